# Set-up and the two jobs of the README. `make demo` and `make test` each install what they need.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DATA   ?= ../shared/cms
OUT    ?= out

.PHONY: demo test bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

demo: $(BIN)/.installed
	mkdir -p $(OUT)
	rm -f $(OUT)/hhkb.sqlite3 $(OUT)/hhkb.sqlite3-*
	HHKB_DATABASE_URL=sqlite:///$(abspath $(OUT))/hhkb.sqlite3 .ci/demo $(DATA) $(OUT)

test: $(BIN)/.installed
	.ci/test

bench: $(BIN)/.installed
	.ci/bench

clean:
	rm -rf $(VENV) $(OUT)
