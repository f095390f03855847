import sys

from bot.store.migrations import main

sys.exit(main(sys.argv[1:]))
