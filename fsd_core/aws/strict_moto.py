"""Moto's server, made as strict as AWS where the local stack depends on it.

`python -m fsd_core.aws.strict_moto -H 127.0.0.1 -p PORT` runs moto's own server after these
changes to how moto evaluates IAM (its access control is enabled by `emulator.py` once the
local operator exists):

- SNS requests are checked against the topic they name. Moto checks every service without a
  resource of its own against "*", which no policy that names its topics (ours: only the
  deployment's topics) matches, so a least-privilege publisher would be refused everywhere.
- A trust policy statement whose principal is a service (`lambda.amazonaws.com`) is simply not
  about an IAM identity: it is neutral for one. Moto checks it as an IAM principal and fails
  (a TypeError, or a deny), so no role a Lambda can assume could be assumed by anyone.
- A signed request without a body (Lambda's GetFunction, an Invoke without payload; S3 reads
  are checked elsewhere) is verified as the client signed it: moto recomputed its signature
  with the parsed parameters as a body, so every such request failed with
  SignatureDoesNotMatch.
- Batch APIs are authorized by the single action's permission, as AWS does (PublishBatch by
  sns:Publish, DeleteMessageBatch by sqs:DeleteMessage), and Lambda's Invoke by
  lambda:InvokeFunction on the function's ARN.
- AssumeRole of a role that does not exist is refused (AccessDenied), as AWS refuses it:
  moto hands out credentials for any ARN ("the role does not need to exist").
- The worker function runs: an asynchronous `Invoke` starts it in a local process under its
  execution role, and a failed invocation goes to its on-failure destination
  (`lambda_emulation.py`).

Everything else is moto as released: S3 requests are checked against bucket and object
ARNs, SQS against queue ARNs, other services against actions only (moto's IAM docs), and
policy conditions are not evaluated.
"""

from __future__ import annotations

import sys
from typing import Any


def _sns_resource(self: Any) -> str:
    """The topic an SNS request acts on (Publish, PublishBatch, Subscribe, ...), else "*"."""
    for name in ("TopicArn", "TargetArn"):
        value = self._get_param(name)
        if value:
            return str(value)
    return "*"


def _is_unknown_principal(self: Any, principal: Any) -> bool:
    """A statement about a principal moto cannot identify (a service, a federated user) is
    neutral for an IAM identity; an "AWS" principal is checked; "*" matches anyone."""
    if principal is None or principal == "*":
        return False
    if isinstance(principal, dict):
        return "AWS" not in principal
    return True


def _signed_request(self: Any) -> Any:
    """The request as the client signed it. Moto rebuilds it with its parsed parameters as
    the body when the body is empty, so a signed GET of a REST API (Lambda's GetFunction)
    never matches; a GET has no body."""
    from botocore.awsrequest import AWSRequest

    signed = self._get_string_between("SignedHeaders=", ",", self._headers["Authorization"]).split(";")
    headers = self._create_headers_for_aws_request(signed, self._headers)
    # A form-encoded body may have been consumed into the parsed parameters; any other request
    # with an empty body (a GET, Lambda's Invoke without a payload) was signed without one.
    form = "x-www-form-urlencoded" in str(self._headers.get("Content-Type", ""))
    body = self._body or (self._data if form and self._method not in ("GET", "HEAD", "DELETE") else None)
    request = AWSRequest(method=self._method, url=self._path, data=body, headers=headers)
    request.context["timestamp"] = headers["X-Amz-Date"]
    return request


#: Batch APIs that AWS authorizes with the single action's permission (SNS: "PublishBatch ...
#: sns:Publish"; SQS: the *Batch actions need sqs:DeleteMessage, sqs:SendMessage, ...). Moto
#: asks for a permission named after the batch API, which no AWS policy grants.
BATCH_ACTIONS = {
    "sns:PublishBatch": "sns:Publish",
    "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
    "sqs:SendMessageBatch": "sqs:SendMessage",
    "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
    # Lambda's IAM action for the Invoke API (and the deprecated InvokeAsync) is InvokeFunction.
    "lambda:Invoke": "lambda:InvokeFunction",
    "lambda:InvokeAsync": "lambda:InvokeFunction",
}


def _authorizing_action(init: Any) -> Any:
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        self._action = BATCH_ACTIONS.get(self._action, self._action)

    return __init__


def _existing_roles_only(assume_role: Any) -> Any:
    """STS AssumeRole, refused with AccessDenied when the role ARN names no role."""
    from moto.iam.models import iam_backends
    from moto.sts.exceptions import STSClientError

    def patched(self: Any, region_name: str, role_session_name: str, role_arn: str, *args: Any, **kwargs: Any) -> Any:
        parts = str(role_arn).split(":")  # arn:<partition>:iam::<account>:role/<name>
        roles = iam_backends[parts[4]][parts[1]].get_roles() if len(parts) == 6 and parts[4].isdigit() else []
        if not any(role.arn == role_arn for role in roles):
            raise STSClientError("AccessDenied", f"Not authorized to perform sts:AssumeRole on resource: {role_arn}")
        return assume_role(self, region_name, role_session_name, role_arn, *args, **kwargs)

    return patched


def patch() -> None:
    """Apply the changes to this process's moto."""
    from moto.awslambda.models import LambdaBackend
    from moto.awslambda.responses import LambdaResponse
    from moto.iam.access_control import IAMPolicyStatement, IAMRequestBase
    from moto.sns.responses import SNSResponse
    from moto.sts.models import STSBackend

    from .lambda_emulation import function_resource, patched_invoke

    SNSResponse._determine_resource = _sns_resource  # type: ignore[attr-defined]
    LambdaResponse._determine_resource = function_resource  # type: ignore[attr-defined]
    LambdaBackend.invoke = patched_invoke(LambdaBackend.invoke)  # type: ignore[method-assign]
    IAMPolicyStatement.is_unknown_principal = _is_unknown_principal  # type: ignore[method-assign]
    IAMRequestBase._create_aws_request = _signed_request  # type: ignore[method-assign]
    IAMRequestBase.__init__ = _authorizing_action(IAMRequestBase.__init__)  # type: ignore[method-assign]
    STSBackend.assume_role = _existing_roles_only(STSBackend.assume_role)  # type: ignore[method-assign]


def _stop(signum: int, _frame: Any) -> None:
    """The emulator stops: the invocations it runs stop with it (their processes are its own)."""
    from .lambda_emulation import stop_all

    stop_all()
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> None:
    import signal

    patch()
    signal.signal(signal.SIGTERM, _stop)
    from moto.server import main as moto_main

    moto_main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
