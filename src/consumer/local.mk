# src/consumer: jobmon-fsm.  Reusable parts of the consume loop live in libjobmon (so tests link
# them); the program is a thin main.
libjobmon_la_SOURCES += \
	src/consumer/util.c
