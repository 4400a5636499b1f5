/* Run-time loading of the CUDA backend (librb_cuda.so) and GPU discovery.
 *
 * The engine never links CUDA: when a GPU path is wanted it dlopen()s librb_cuda.so,
 * checks its ABI version and asks the CUDA runtime for devices. Any failure (library
 * not built or not installed, no NVIDIA driver, cuBLAS missing, no device) leaves the
 * engine on the CPU with one log line saying why. Search order for the library:
 *   1. $RAGBOX_CUDA_LIB (a path),
 *   2. <dir of the running executable>/../lib/ragbox/librb_cuda.so (installed layout),
 *   3. <dir of the running executable>/../lib/librb_cuda.so (build tree),
 *   4. RAGBOX_CUDA_LIBDIR/librb_cuda.so (the configured install directory),
 *   5. RAGBOX_CUDA_BUILD_LIBDIR/librb_cuda.so (the build tree, for tests and benches).
 * RAGBOX_CUDA_DISABLE=1 keeps everything on the CPU.
 *
 * Thread-safety: rb__cuda_backend() loads once (pthread_once) and is then read-only.
 */
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend-cuda.h"

#ifndef RAGBOX_CUDA_LIBDIR
#define RAGBOX_CUDA_LIBDIR "/usr/lib/ragbox"
#endif

static struct {
    pthread_once_t once;
    void *handle;
    const struct rb_cuda_api *api;
    int n_devices;
    char path[PATH_MAX];
    char reason[512];
} cuda_state = {PTHREAD_ONCE_INIT, NULL, NULL, 0, "", ""};

static void *try_open(const char *path, char *why, size_t why_len)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        snprintf(why, why_len, "%.400s", e ? e : path);
    }
    return h;
}

static void load_once(void)
{
    const char *disable = getenv("RAGBOX_CUDA_DISABLE");
    if (disable && *disable && strcmp(disable, "0") != 0) {
        snprintf(cuda_state.reason, sizeof cuda_state.reason,
                 "disabled by RAGBOX_CUDA_DISABLE");
        return;
    }
    char candidates[5][PATH_MAX];
    int n = 0;
    const char *env = getenv("RAGBOX_CUDA_LIB");
    if (env && *env)
        snprintf(candidates[n++], PATH_MAX, "%.4000s", env);
    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len > 0) {
        exe[len] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            snprintf(candidates[n++], PATH_MAX, "%.3900s/../lib/ragbox/librb_cuda.so", exe);
            snprintf(candidates[n++], PATH_MAX, "%.3900s/../lib/librb_cuda.so", exe);
        }
    }
    snprintf(candidates[n++], PATH_MAX, "%.3900s/librb_cuda.so", RAGBOX_CUDA_LIBDIR);
#ifdef RAGBOX_CUDA_BUILD_LIBDIR
    snprintf(candidates[n++], PATH_MAX, "%.3900s/librb_cuda.so", RAGBOX_CUDA_BUILD_LIBDIR);
#endif

    char why[512] = "librb_cuda.so not found";
    for (int i = 0; i < n && !cuda_state.handle; i++) {
        if (access(candidates[i], F_OK) != 0)
            continue;
        cuda_state.handle = try_open(candidates[i], why, sizeof why);
        if (cuda_state.handle)
            snprintf(cuda_state.path, sizeof cuda_state.path, "%.4000s", candidates[i]);
    }
    if (!cuda_state.handle) {
        snprintf(cuda_state.reason, sizeof cuda_state.reason, "CUDA backend not loaded: %.450s", why);
        return;
    }
    rb_cuda_api_get_fn get = NULL;
    void *sym = dlsym(cuda_state.handle, "rb_cuda_api_get");
    memcpy(&get, &sym, sizeof get); /* object -> function pointer, as POSIX allows */
    const struct rb_cuda_api *api = get ? get() : NULL;
    if (!api || api->abi_version != RB_CUDA_ABI_VERSION) {
        snprintf(cuda_state.reason, sizeof cuda_state.reason,
                 "%.400s: ABI version %d, expected %d", cuda_state.path, api ? api->abi_version : -1,
                 RB_CUDA_ABI_VERSION);
        dlclose(cuda_state.handle);
        cuda_state.handle = NULL;
        return;
    }
    char err[256] = "";
    cuda_state.n_devices = api->device_count(err, sizeof err);
    if (cuda_state.n_devices <= 0) {
        snprintf(cuda_state.reason, sizeof cuda_state.reason, "%.250s", err[0] ? err : "no GPU");
        cuda_state.n_devices = 0;
    }
    cuda_state.api = api;
}

void rb__cuda_backend_set(const struct rb_cuda_api *api, int n_devices)
{
    pthread_once(&cuda_state.once, load_once);
    cuda_state.api = api;
    cuda_state.n_devices = api ? n_devices : 0;
    snprintf(cuda_state.reason, sizeof cuda_state.reason, "%s",
             api ? "" : "backend removed by rb__cuda_backend_set");
}

const struct rb_cuda_api *rb__cuda_backend(int *n_devices, const char **reason)
{
    pthread_once(&cuda_state.once, load_once);
    if (n_devices)
        *n_devices = cuda_state.n_devices;
    if (reason)
        *reason = cuda_state.reason;
    return cuda_state.api;
}

void rb_engine_gpu_probe(struct rb_engine_gpu_status *out)
{
    memset(out, 0, sizeof *out);
#ifdef RAGBOX_CUDA_BUILT
    out->built = true;
#endif
    const char *reason = NULL;
    int n = 0;
    const struct rb_cuda_api *api = rb__cuda_backend(&n, &reason);
    out->loaded = api != NULL;
    out->n_devices = n;
    snprintf(out->library, sizeof out->library, "%.500s", cuda_state.path);
    if (api && n > 0) {
        struct rb_cuda_device_info info;
        if (api->device_info(0, &info) == 0) {
            snprintf(out->device, sizeof out->device, "%.250s", info.name);
            out->total_bytes = info.total_bytes;
            out->free_bytes = info.free_bytes;
            out->cc_major = info.cc_major;
            out->cc_minor = info.cc_minor;
        }
        snprintf(out->backend, sizeof out->backend, "cuda");
    } else {
        snprintf(out->backend, sizeof out->backend, "cpu");
        snprintf(out->reason, sizeof out->reason, "%.500s",
                 reason && *reason ? reason : "no GPU");
    }
}
