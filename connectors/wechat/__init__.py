"""WeChat channels: the official account (公众号) and, sharing its crypto and token holder, 微信客服."""
