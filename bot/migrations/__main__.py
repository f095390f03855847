import sys

from bot.migrations import main

sys.exit(main(sys.argv[1:]))
