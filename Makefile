# The two set-up commands of the README. Both install what is missing first (./install.sh is
# idempotent: it returns at once when .venv is already right).
.PHONY: demo test install lint

lint: install
	.venv/bin/ruff check .

# One torch thread: the CPU training steps run faster on a busy 2-core machine this way.
export OMP_NUM_THREADS ?= 1

install:
	./install.sh

demo: install
	.venv/bin/curate demo --out demo-out

test: install
	.venv/bin/ruff check .
	.venv/bin/python -m pytest -q
