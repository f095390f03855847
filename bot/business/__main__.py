"""``python -m bot.business {new,validate,list}`` (see bot/business/__init__.py)."""
import sys

from bot.business.cli import main

sys.exit(main())
