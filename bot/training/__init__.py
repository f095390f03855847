"""Tooling for admins and developers: model cache, retraining loop (inbox, annotations, trainer, compare, activation), evaluation, data checks."""
