/* ui_assets: the web console's files, embedded at build time by
 * manager/embed_ui.py from manager/ui/ (served by http_ui.c at /ui/). */
#ifndef DEVSYS_UI_ASSETS_H
#define DEVSYS_UI_ASSETS_H

#include <stddef.h>

struct ui_asset {
    const char *name; /* file name, no directory */
    const char *type; /* Content-Type */
    const unsigned char *data;
    size_t len;
};

extern const struct ui_asset ui_assets[];
extern const int ui_assets_count;

#endif
