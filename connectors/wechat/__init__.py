"""connectors.wechat.official_account."""
