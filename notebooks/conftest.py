"""`pytest --nbval notebooks`: every `%%codetether` cell replays its recorded transcript.

nbval starts each kernel with this process's environment. Forcing replay here means the
check never calls a model and never spends money, even on a machine whose shell holds an
API key; with no key at all the magic would replay anyway (no provider configured and the
turn is recorded), which tests/test_replay_notebooks.py checks separately.
"""

import os


def pytest_configure(config):
    os.environ["CODETETHER_REPLAY"] = "1"
