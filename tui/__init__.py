"""The operator dashboard (`fsd tui`): a Textual app over `fsd_core`.

Screens (``tui/screens/``): Deployment, Recommend, Launch, Runs, Help. Widgets
(``tui/widgets/``): one per file, each message nested in the widget that posts it. Blocking
calls into `fsd_core` (recommendations, runs, the emulator) happen in thread workers that post
messages; `tui/services.py` is the only module that calls `fsd_core` (thinly). Nothing in
`fsd_core` imports this package.
"""
