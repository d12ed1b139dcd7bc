"""Everything that talks to AWS (or its local emulator): the only package that imports boto3.

manifest (the deployment's Terraform outputs), clients (boto3 at the manifest's endpoint),
emulator and local_stack (moto's server and the deployment in it), terraform (the driver),
package (the Lambda zip), limits (service limits and billing units, no boto3: the cost model
imports it). Importing this package loads nothing heavy.
"""
