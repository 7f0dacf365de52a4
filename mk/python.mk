# mk/python.mk -- the Python module `nearly` (python/nearly/) built into
# $(BUILD)/python/nearly/, so that from the repository root
#   PYTHONPATH=build/python /usr/bin/python3 -c 'import nearly'
# works.  The extension links libnearly.a statically (its objects are built
# with -fPIC) and needs only Python's headers: numpy is imported at run time.
# Skipped, with a note, when Python's development headers are missing.

PYTHON ?= /usr/bin/python3
PY_INC_DIR := $(shell $(PYTHON) -c 'import sysconfig; print(sysconfig.get_paths()["include"])' 2>/dev/null)
PY_EXT_SUFFIX := $(shell $(PYTHON) -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))' 2>/dev/null)

PY_OUT = $(BUILD)/python/nearly
PY_MOD = $(PY_OUT)/_nearly$(PY_EXT_SUFFIX)
PY_PURE = $(patsubst python/nearly/%,$(PY_OUT)/%,$(wildcard python/nearly/*.py python/nearly/*.pyi python/nearly/py.typed))
PY_OBJ = $(BUILD)/obj/python/_nearly.o

ifneq ($(wildcard $(PY_INC_DIR)/Python.h),)
EXTRA_ALL += $(PY_MOD) $(PY_PURE)

python: $(PY_MOD) $(PY_PURE)

$(PY_OBJ): python/nearly/_nearly.c include/nearly.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -I$(PY_INC_DIR) -fvisibility=hidden -MMD -MP -c $< -o $@

$(PY_MOD): $(PY_OBJ) $(BUILD)/libnearly.a
	@mkdir -p $(dir $@)
	$(CC) -shared $(ALL_CFLAGS) -Wl,--exclude-libs,ALL -o $@ $(PY_OBJ) $(BUILD)/libnearly.a $(LDLIBS)

$(PY_OUT)/%: python/nearly/%
	@mkdir -p $(dir $@)
	cp $< $@
else
python:
	@echo "python: $(PYTHON) has no development headers (Python.h); install python3-dev"
endif
