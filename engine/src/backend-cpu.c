/* The CPU backend: the model graphs of model.c over the kernels of kernels*.c. */
#include "backend.h"

static enum rb_status cpu_init(struct rb__model *m)
{
    (void)m; /* weights are used in place from the GGUF mapping */
    return RB_OK;
}

static void cpu_release(struct rb__model *m)
{
    (void)m;
}

static const struct rb_backend_i cpu_backend = {
    .name = "cpu",
    .init = cpu_init,
    .release = cpu_release,
    .kv_create = rb__kv_create,
    .kv_free = rb__kv_free,
    .forward = rb__forward,
    .encode = rb__encode,
    .matmul = rb__model_matmul,
};

const struct rb_backend_i *rb__backend_cpu(void)
{
    return &cpu_backend;
}
