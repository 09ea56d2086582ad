# Shared by the Python drivers: builds the driver's git-ignored virtualenv (.venv) from its pinned requirements.txt.
# Idempotent: the stamp file is remade only when requirements.txt changes.
PYTHON ?= python3
VENV   := .venv
STAMP  := $(VENV)/.installed

.PHONY: all clean
all: $(STAMP)

$(STAMP): requirements.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --disable-pip-version-check -q -r requirements.txt
	touch $@

clean:
	rm -rf $(VENV)
