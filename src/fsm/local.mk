libjobmon_la_SOURCES += src/fsm/hash.c src/fsm/status.c src/fsm/transition.c src/fsm/effect.c \
	src/fsm/resources.c
