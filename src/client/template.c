/*
 * template.c — tools and task templates: parsing a command template into literal segments and
 * {placeholders}, the argument rules of Jobmon (§1.2: every placeholder declared exactly once as
 * a node, task or op arg, every declared name used, `name` reserved), rendering commands and
 * default task names.
 *
 * Deliberately not here: tasks and workflows (model.c), hashing beyond the template version.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "client/client_int.h"

/* ---- names ---- */

jm_rc_t jm_name_check(const char *name, const char *what, jm_err_t *err)
{
    size_t len = strlen(name);
    if (len == 0)
        return jm_err_set(err, JM_ERR_INVALID, "%s: name is empty", what);
    if (len > JM_NAME_MAX)
        return jm_err_set(err, JM_ERR_INVALID, "%s: name is %zu bytes, at most %d", what, len,
                          JM_NAME_MAX);
    if (isdigit((unsigned char)name[0]))
        return jm_err_set(err, JM_ERR_INVALID, "%s: name \"%.64s\" starts with a digit", what,
                          name);
    const char *bad = strpbrk(name, "/\\'\" ");
    if (bad)
        return jm_err_set(err, JM_ERR_INVALID, "%s: name \"%.64s\" contains '%c'", what, name,
                          *bad);
    return JM_OK;
}

/* ---- tools ---- */

jm_tool_t *jm_tool_new(const char *name)
{
    if (!name || !*name || strlen(name) > JM_NAME_MAX)
        return NULL;
    jm_tool_t *tool = jm_calloc(1, sizeof(*tool));
    tool->name = jm_strdup(name);
    jm_defaults_init(&tool->defaults);
    return tool;
}

static void template_free(jm_template_t *tt)
{
    if (!tt)
        return;
    for (size_t i = 0; i < tt->n_args; i++)
        free(tt->args[i]);
    free(tt->args);
    free(tt->name);
    free(tt->command_template);
    free(tt->lits);
    free(tt->seg);
    jm_defaults_clear(&tt->defaults);
    free(tt);
}

void jm_tool_destroy(jm_tool_t *tool)
{
    if (!tool)
        return;
    for (size_t i = 0; i < tool->n_tmpls; i++)
        template_free(tool->tmpls[i]);
    free(tool->tmpls);
    jm_defaults_clear(&tool->defaults);
    free(tool->name);
    free(tool);
}

const char *jm_tool_name(const jm_tool_t *tool)
{
    return tool->name;
}

jm_defaults_t *jm_tool_defaults(jm_tool_t *tool)
{
    return &tool->defaults;
}

jm_template_t *jm_tool_template(jm_tool_t *tool, const char *name)
{
    for (size_t i = 0; i < tool->n_tmpls; i++)
        if (strcmp(tool->tmpls[i]->name, name) == 0)
            return tool->tmpls[i];
    return NULL;
}

/* ---- templates ---- */

int jm_template_arg_index(const jm_template_t *tt, const char *name)
{
    for (size_t i = 0; i < tt->n_args; i++)
        if (strcmp(tt->args[i], name) == 0)
            return (int)i;
    return -1;
}

jm_arg_kind_t jm_template_arg_kind(const jm_template_t *tt, size_t i)
{
    if (i < tt->n_node)
        return JM_ARG_NODE;
    if (i < tt->n_node + tt->n_task)
        return JM_ARG_TASK;
    return JM_ARG_OP;
}

static const char *kind_list_name(jm_arg_kind_t k)
{
    return k == JM_ARG_NODE ? "node_args" : k == JM_ARG_TASK ? "task_args" : "op_args";
}

static int ident_start(int c)
{
    return isalpha(c) || c == '_';
}
static int ident_char(int c)
{
    return isalnum(c) || c == '_';
}

/* Parse tt->command_template into segments; placeholders must be declared args. */
static jm_rc_t parse_command(jm_template_t *tt, int *used, jm_err_t *err)
{
    const char *s = tt->command_template;
    size_t n = strlen(s);
    tt->lits = jm_malloc(n + 1);
    tt->seg = jm_calloc(n / 2 + 2, sizeof(*tt->seg)); /* at most one per "{x}" */
    size_t lit = 0, seg_start = 0;
    for (size_t i = 0; i < n;) {
        char c = s[i];
        if (c == '{' && s[i + 1] == '{') {
            tt->lits[lit++] = '{';
            i += 2;
        } else if (c == '}' && s[i + 1] == '}') {
            tt->lits[lit++] = '}';
            i += 2;
        } else if (c == '{') {
            size_t j = i + 1;
            if (!ident_start((unsigned char)s[j]))
                return jm_err_set(
                    err, JM_ERR_INVALID,
                    "command_template: '{' at offset %zu does not start a {placeholder} (write {{ "
                    "for a literal brace)",
                    i);
            while (ident_char((unsigned char)s[j]))
                j++;
            if (s[j] != '}')
                return jm_err_set(err, JM_ERR_INVALID,
                                  "command_template: placeholder at offset %zu is not closed by "
                                  "'}' (write {{ for "
                                  "a literal brace)",
                                  i);
            char *ph = jm_strndup(s + i + 1, j - i - 1);
            int a = jm_template_arg_index(tt, ph);
            if (a < 0) {
                jm_err_set(err, JM_ERR_INVALID,
                           "command_template: placeholder {%s} is not declared in node_args, "
                           "task_args or op_args",
                           ph);
                free(ph);
                return JM_ERR_INVALID;
            }
            free(ph);
            used[a] = 1;
            tt->seg[tt->n_seg++] =
                (jm_segment_t){.lit_off = seg_start, .lit_len = lit - seg_start, .arg = a};
            seg_start = lit;
            i = j + 1;
        } else if (c == '}') {
            return jm_err_set(
                err, JM_ERR_INVALID,
                "command_template: unmatched '}' at offset %zu (write }} for a literal brace)", i);
        } else {
            tt->lits[lit++] = c;
            i++;
        }
    }
    tt->lits[lit] = '\0';
    tt->seg[tt->n_seg++] =
        (jm_segment_t){.lit_off = seg_start, .lit_len = lit - seg_start, .arg = -1};
    tt->lit_total = lit;
    return JM_OK;
}

static jm_rc_t add_args(jm_template_t *tt, const char *const *names, size_t n, jm_arg_kind_t k,
                        jm_err_t *err)
{
    for (size_t i = 0; i < n; i++) {
        const char *a = names[i];
        if (!a || !*a)
            return jm_err_set(err, JM_ERR_INVALID, "%s[%zu]: empty argument name",
                              kind_list_name(k), i);
        size_t len = strlen(a);
        int ok = ident_start((unsigned char)a[0]) && len <= JM_NAME_MAX;
        for (size_t j = 1; ok && j < len; j++)
            ok = ident_char((unsigned char)a[j]);
        if (!ok)
            return jm_err_set(err, JM_ERR_INVALID,
                              "%s[%zu]: \"%.64s\" is not a valid argument name (letters, digits, "
                              "_; not starting with a digit)",
                              kind_list_name(k), i, a);
        if (strcmp(a, "name") == 0)
            return jm_err_set(err, JM_ERR_INVALID, "%s[%zu]: \"name\" is a reserved word",
                              kind_list_name(k), i);
        int prev = jm_template_arg_index(tt, a);
        if (prev >= 0)
            return jm_err_set(
                err, JM_ERR_INVALID, "%s[%zu]: argument \"%s\" is already declared in %s",
                kind_list_name(k), i, a, kind_list_name(jm_template_arg_kind(tt, (size_t)prev)));
        tt->args[tt->n_args++] = jm_strdup(a);
    }
    return JM_OK;
}

jm_template_t *jm_template_new(jm_tool_t *tool, const char *name, const char *command_template,
                               const char *const *node_args, size_t n_node,
                               const char *const *task_args, size_t n_task,
                               const char *const *op_args, size_t n_op, jm_err_t *err)
{
    jm_template_t *tt = NULL;
    int *used = NULL;
    jm_rc_t rc = jm_name_check(name ? name : "", "template", err);
    if (rc != JM_OK)
        goto out;
    if (jm_tool_template(tool, name)) {
        rc = jm_err_set(err, JM_ERR_INVALID, "template \"%s\" is already defined", name);
        goto out;
    }
    if (!command_template || !*command_template) {
        rc = jm_err_set(err, JM_ERR_INVALID, "command_template: empty");
        goto out;
    }
    if (strlen(command_template) > JM_COMMAND_MAX) {
        rc = jm_err_set(err, JM_ERR_INVALID, "command_template: longer than %d bytes",
                        JM_COMMAND_MAX);
        goto out;
    }
    tt = jm_calloc(1, sizeof(*tt));
    tt->tool = tool;
    tt->name = jm_strdup(name);
    tt->command_template = jm_strdup(command_template);
    tt->args = jm_calloc(n_node + n_task + n_op + 1, sizeof(char *));
    tt->max_concurrently_running = JM_DEFAULT_CONCURRENCY;
    jm_defaults_init(&tt->defaults);
    if ((rc = add_args(tt, node_args, n_node, JM_ARG_NODE, err)) != JM_OK)
        goto out;
    tt->n_node = n_node;
    if ((rc = add_args(tt, task_args, n_task, JM_ARG_TASK, err)) != JM_OK)
        goto out;
    tt->n_task = n_task;
    if ((rc = add_args(tt, op_args, n_op, JM_ARG_OP, err)) != JM_OK)
        goto out;
    tt->n_op = n_op;
    used = jm_calloc(tt->n_args + 1, sizeof(int));
    if ((rc = parse_command(tt, used, err)) != JM_OK)
        goto out;
    for (size_t i = 0; i < tt->n_args; i++)
        if (!used[i]) {
            jm_arg_kind_t k = jm_template_arg_kind(tt, i);
            size_t base = k == JM_ARG_NODE   ? 0
                          : k == JM_ARG_TASK ? tt->n_node
                                             : tt->n_node + tt->n_task;
            rc = jm_err_set(err, JM_ERR_INVALID,
                            "%s[%zu]: \"%s\" is declared but {%s} does not appear in the "
                            "command template",
                            kind_list_name(k), i - base, tt->args[i], tt->args[i]);
            goto out;
        }
    tt->hash =
        jm_hash_template_version(tt->name, tt->command_template, (const char *const *)tt->args,
                                 tt->n_node, (const char *const *)tt->args + tt->n_node, tt->n_task,
                                 (const char *const *)tt->args + tt->n_node + tt->n_task, tt->n_op);
    if (tool->n_tmpls == tool->cap_tmpls) {
        tool->cap_tmpls = tool->cap_tmpls ? 2 * tool->cap_tmpls : 8;
        tool->tmpls = jm_realloc(tool->tmpls, tool->cap_tmpls * sizeof(*tool->tmpls));
    }
    tool->tmpls[tool->n_tmpls++] = tt;
out:
    free(used);
    if (rc != JM_OK) {
        template_free(tt);
        return NULL;
    }
    return tt;
}

const char *jm_template_name(const jm_template_t *tt)
{
    return tt->name;
}

jm_hash_t jm_template_hash(const jm_template_t *tt)
{
    return tt->hash;
}

jm_defaults_t *jm_template_defaults(jm_template_t *tt)
{
    return &tt->defaults;
}

void jm_template_set_max_concurrently_running(jm_template_t *tt, int64_t limit)
{
    tt->max_concurrently_running = limit < 0 ? 0 : limit;
}

size_t jm_template_render_len(const jm_template_t *tt, const char *const *values)
{
    size_t len = tt->lit_total;
    for (size_t i = 0; i < tt->n_seg; i++)
        if (tt->seg[i].arg >= 0)
            len += strlen(values[tt->seg[i].arg]);
    return len;
}

void jm_template_render(const jm_template_t *tt, const char *const *values, char *out)
{
    for (size_t i = 0; i < tt->n_seg; i++) {
        const jm_segment_t *sg = &tt->seg[i];
        memcpy(out, tt->lits + sg->lit_off, sg->lit_len);
        out += sg->lit_len;
        if (sg->arg >= 0) {
            size_t l = strlen(values[sg->arg]);
            memcpy(out, values[sg->arg], l);
            out += l;
        }
    }
    *out = '\0';
}

void jm_template_default_name(const jm_template_t *tt, const char *prefix,
                              const char *const *values, char *out)
{
    size_t max = JM_TASK_NAME_DEFAULT_MAX, o = 0;
    const char *p = prefix ? prefix : tt->name;
    for (; *p && o < max; p++)
        out[o++] = *p;
    for (size_t i = 0; i < tt->n_node && o < max; i++) {
        out[o++] = '_';
        for (const char *k = tt->args[i]; *k && o < max; k++)
            out[o++] = *k;
        if (o < max)
            out[o++] = '-';
        for (const char *v = values[i]; *v && o < max; v++)
            out[o++] = *v;
    }
    out[o] = '\0';
    for (size_t i = 0; i < o; i++)
        if (strchr("/\\'\" ", out[i]) || (unsigned char)out[i] < 0x20)
            out[i] = '_';
    /* do not cut a UTF-8 sequence in half */
    if (o == max) {
        size_t i = o;
        while (i > 0 && ((unsigned char)out[i - 1] & 0xC0) == 0x80)
            i--;
        if (i > 0 && ((unsigned char)out[i - 1] & 0x80)) {
            unsigned char lead = (unsigned char)out[i - 1];
            size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
            if (o - (i - 1) < need)
                out[i - 1] = '\0';
        }
    }
}
