"""The dashboard's screens: one per mode (Deployment, Recommend, Launch, Runs) and Help."""
