/* An open-addressing hash map from byte strings to uint32 values (engine-private).
 *
 * Keys are borrowed (pointer + length) and must outlive the map: the GGUF reader
 * indexes keys and tensor names in its own storage, the tokenizers index their
 * vocabulary arena. Fixed capacity chosen at creation (no rehash); lookups are
 * O(1) expected. Read-only use is thread-safe. */
#ifndef RAGBOX_ENGINE_STRMAP_H
#define RAGBOX_ENGINE_STRMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* 16 bytes: key pointer, then the key length (low 24 bits) with an 8-bit hash tag
 * (high bits) so most mismatches are rejected without touching the key. */
#define RB_STRMAP_MAX_KEY ((1u << 24) - 1)
struct rb_strmap_slot {
    const char *key; /* NULL: empty */
    uint32_t len_tag;
    uint32_t value;
};

struct rb_strmap {
    struct rb_strmap_slot *slots; /* owned */
    size_t mask;                  /* capacity - 1 (power of two) */
    size_t count;
};

uint64_t rb__strmap_hash(const void *key, size_t len);
/* Room for up to `n` keys (load factor <= 1/2). false on out of memory. */
bool rb__strmap_init(struct rb_strmap *m, size_t n);
void rb__strmap_free(struct rb_strmap *m);
/* Inserts key -> value. Returns 1 if inserted, 0 if the key was present (value
 * untouched; *existing set when non-NULL), -1 if the map is full or the key is
 * longer than RB_STRMAP_MAX_KEY. */
int rb__strmap_put(struct rb_strmap *m, const char *key, size_t len, uint32_t value,
                   uint32_t *existing);
/* Looks key up: true and *value when present. */
bool rb__strmap_get(const struct rb_strmap *m, const char *key, size_t len, uint32_t *value);

#endif
