"""The reliability suite: kill -9 crash trials (crash.py), API fuzzing with Schemathesis (fuzz.py) and the
malformed input corpus (corpus.py). `trialstack reliability ...` runs each; tests/reliability runs CI's short modes."""
