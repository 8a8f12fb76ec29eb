/*
 * gen_schemas.c — writes schemas/events/<type>.json from the rule table (`make schemas`).
 * Usage: gen_schemas OUTDIR.  It only prints what event_schema.c generates.
 */
#include <stdio.h>
#include <stdlib.h>

#include "producer/event_int.h"

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
        return JM_EXIT_USAGE;
    }
    for (int t = 0; t < JM_EV__CNT; t++) {
        json_t *schema = jm_event_schema((jm_event_type_t)t);
        char *path = jm_asprintf("%s/%s.json", argv[1], jm_event_type_name((jm_event_type_t)t));
        int bad = json_dump_file(schema, path, JSON_INDENT(2)) != 0;
        if (bad)
            fprintf(stderr, "%s: cannot write\n", path);
        free(path);
        json_decref(schema);
        if (bad)
            return JM_EXIT_FAILED;
    }
    return JM_EXIT_OK;
}
