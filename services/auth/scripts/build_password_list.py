"""Write ``giftcloud_auth/data/common_passwords.txt``: the passwords people choose most often,
one per line, lower-cased, from zxcvbn's frequency list (Dropbox / Daniel Wolf, MIT licence;
its list was built from leaked password corpora).

    uv run --with zxcvbn python services/auth/scripts/build_password_list.py
"""

import importlib
from pathlib import Path

FREQUENCY_LISTS = importlib.import_module("zxcvbn.frequency_lists").FREQUENCY_LISTS

HEADER = """\
# The passwords people choose most often (30,000; most common first), lower-cased.
# From zxcvbn's frequency list (https://github.com/dwolf/zxcvbn-python, MIT licence,
# Copyright (c) 2016 Daniel Wolf; the list was built from leaked password corpora).
# Regenerate with services/auth/scripts/build_password_list.py.
"""

target = Path(__file__).resolve().parents[1] / "src" / "giftcloud_auth" / "data"
target.mkdir(exist_ok=True)
words = list(dict.fromkeys(w.lower() for w in FREQUENCY_LISTS["passwords"]))
(target / "common_passwords.txt").write_text(HEADER + "\n".join(words) + "\n")
print(f"wrote {len(words)} passwords")
