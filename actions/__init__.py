"""Custom actions for the kefu assistant, run by rasa-sdk's action server."""
