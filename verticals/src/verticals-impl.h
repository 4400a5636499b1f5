/* Private to verticals/. */
#ifndef RAGBOX_VERTICALS_IMPL_H
#define RAGBOX_VERTICALS_IMPL_H

#include "ragbox/verticals.h"

struct rb_template {
    char *name;    /* "answer" */
    char *id;      /* "<pack>/<name>.<lang>", set by the pack loader */
    char *version;
    enum rb_vertical_lang lang;
    char *path;
    char *system;
    char *user;
    bool uses_disclaimer;
};

#endif
