/* Tokenizer internals shared inside the engine (engine-private).
 *
 * engine-compute builds a tokenizer from a GGUF it already has open with
 * rb__tokenizer_from_gguf (the public rb_engine_tokenizer_load opens the file
 * itself). The tokenizer copies what it needs: the gguf may be closed after. */
#ifndef RAGBOX_ENGINE_TOKENIZER_H
#define RAGBOX_ENGINE_TOKENIZER_H

#include "gguf.h"
#include "ragbox/engine.h"

RB_NODISCARD enum rb_status rb__tokenizer_from_gguf(const struct rb_gguf *g, const char *what,
                                                    struct rb_engine_tokenizer **out,
                                                    struct rb_errmsg *err);

#endif
