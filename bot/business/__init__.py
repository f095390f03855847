"""Business packs as a command: ``python -m bot.business new <name> --from shop|property``
(a pack skeleton copied from another) and ``python -m bot.business validate`` (make validate:
a pack checked for completeness, every problem named by file and key)."""
