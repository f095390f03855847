"""``python -m bot.training inbox|annotate|train|compare|activate|rollback|log``: the admins'
retraining loop headless, in a process of its own (see bot/training/cli.py)."""
import sys

from bot.training.cli import main

sys.exit(main())
