libjobmon_la_SOURCES +=
