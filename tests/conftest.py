import os
import sys

# The tests share helpers in tests/oracles.py (pytest runs with --import-mode=importlib).
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
