"""``python -m allye_data_connector demo`` (the README's main job) and every other ``adc``
command: ``python -m allye_data_connector ls`` is ``adc ls``."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main(prog_name="adc"))
