"""Dashboard widgets, one per module; each message is nested in the widget that posts it."""
