"""The service team's side, mounted in the gateway: agents' console API, admin API, agents' Telegram group, alerts, static pages."""
