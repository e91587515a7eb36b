// SPDX-License-Identifier: MIT
/* dl.c - a library loaded at its first use, and its calls found (dl.h). */
#include <dlfcn.h>
#include <errno.h>

#include "dl.h"
#include "log.h"

int weft__dl_load(const char *const *libs, const struct weft__dl_call *calls, size_t n,
		  const char *who, const char *package)
{
	void *h = NULL;

	for (size_t i = 0; libs[i] && !h; i++)
		h = dlopen(libs[i], RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		weft__log(WEFT_LOG_ERROR, who, "cannot load %s: %s (install %s)", libs[0],
			  dlerror(), package);
		return -ENODEV;
	}
	for (size_t i = 0; i < n; i++)
		if (!(*calls[i].fn = dlsym(h, calls[i].name))) {
			weft__log(WEFT_LOG_ERROR, who, "%s lacks %s, which weft calls", libs[0],
				  calls[i].name);
			return -ENODEV;
		}
	return 0;
}
