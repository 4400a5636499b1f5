/* E-mail (.eml, RFC 5322 + MIME) through GMime: headers (subject, from, to,
 * cc, date), the body (text/plain preferred over text/html in an
 * alternative, charsets converted by GMime), and attachments handed back as
 * separate files that the pipeline ingests as documents linked to the mail. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <gmime/gmime.h>
#include <libxml/HTMLparser.h>

#include "ingest-impl.h"

struct mail {
    struct rb__docb *b;
    char *plain; /* first inline text/plain body (UTF-8) */
    char *html;  /* first inline text/html body */
    size_t attached_bytes;
};

static void take_attachment(struct mail *m, GMimeObject *obj, const char *name)
{
    GMimePart *part = GMIME_PART(obj);
    GMimeDataWrapper *w = g_mime_part_get_content(part);
    if (!w)
        return;
    GMimeStream *mem = g_mime_stream_mem_new();
    if (g_mime_data_wrapper_write_to_stream(w, mem) < 0) {
        g_object_unref(mem);
        return;
    }
    GByteArray *arr = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
    if (arr && arr->len > 0) {
        if (m->attached_bytes + arr->len > m->b->lim->max_file_bytes) {
            RB_WARN("ingest", "e-mail attachments exceed %zu MiB: %s skipped",
                    m->b->lim->max_file_bytes >> 20, name);
        } else {
            GMimeContentType *ct = g_mime_object_get_content_type(obj);
            char *mime = ct ? g_mime_content_type_get_mime_type(ct) : NULL;
            rb__docb_attach(m->b, name, mime, arr->data, arr->len);
            g_free(mime);
            m->attached_bytes += arr->len;
        }
    }
    g_object_unref(mem);
}

static void walk(struct mail *m, GMimeObject *obj, int depth)
{
    if (!obj || m->b->st != RB_OK)
        return;
    if (depth > 32) {
        rb__docb_fail(m->b, RB_ERR_TOO_LARGE, "MIME nesting deeper than 32");
        return;
    }
    if (GMIME_IS_MULTIPART(obj)) {
        GMimeMultipart *mp = GMIME_MULTIPART(obj);
        int n = g_mime_multipart_get_count(mp);
        for (int i = 0; i < n && i < 1000; i++)
            walk(m, g_mime_multipart_get_part(mp, i), depth + 1);
        return;
    }
    if (GMIME_IS_MESSAGE_PART(obj)) {
        /* A forwarded message: its body and attachments count as this mail's. */
        GMimeMessage *inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));
        if (inner)
            walk(m, g_mime_message_get_mime_part(inner), depth + 1);
        return;
    }
    if (!GMIME_IS_PART(obj))
        return;
    GMimeContentType *ct = g_mime_object_get_content_type(obj);
    const char *fname = g_mime_part_get_filename(GMIME_PART(obj));
    const char *disp = g_mime_object_get_disposition(obj);
    bool attachment = (disp && !strcasecmp(disp, "attachment")) || (fname && *fname);
    bool is_text = ct && g_mime_content_type_is_type(ct, "text", "*");
    if (is_text && !attachment && GMIME_IS_TEXT_PART(obj)) {
        char *t = g_mime_text_part_get_text(GMIME_TEXT_PART(obj));
        if (t) {
            bool html = g_mime_content_type_is_type(ct, "text", "html");
            char **slot = html ? &m->html : &m->plain;
            if (!*slot)
                *slot = rb_strdup(t);
            g_free(t);
        }
        return;
    }
    if (attachment || !is_text) {
        char *gen = NULL;
        if (!fname || !*fname) {
            char *mt = ct ? g_mime_content_type_get_mime_type(ct) : NULL;
            gen = rb_asprintf("part-%s", mt ? mt : "data");
            for (char *p = gen; p && *p; p++)
                if (*p == '/')
                    *p = '.';
            g_free(mt);
        }
        take_attachment(m, obj, fname && *fname ? fname : gen);
        free(gen);
    }
}

static void add_json(cJSON *o, const char *k, const char *v)
{
    if (v && *v)
        cJSON_AddStringToObject(o, k, v);
}

enum rb_status rb__parse_email(struct rb__docb *b, const void *data, size_t len)
{
    g_mime_init();
    /* A message saved as UTF-16 (with a BOM, or NUL bytes among ASCII) is
     * converted first: MIME itself is an 8-bit format. */
    char *converted = NULL;
    size_t probe = len < 1024 ? len : 1024;
    if (len >= 2 && (memcmp(data, "\xff\xfe", 2) == 0 || memcmp(data, "\xfe\xff", 2) == 0 ||
                     memchr(data, 0, probe))) {
        size_t n = 0;
        const char *cs = NULL;
        /* no BOM: the NULs' positions tell the byte order */
        const unsigned char *u = data;
        const char *charset = NULL;
        if (!(u[0] == 0xff || u[0] == 0xfe))
            charset = u[0] == 0 ? "UTF-16BE" : "UTF-16LE";
        if (rb__to_utf8(data, len, charset, b->lim->max_file_bytes, &converted, &n, &cs, NULL) ==
                RB_OK &&
            memchr(converted, 0, n) == NULL) {
            data = converted;
            len = n;
        }
    }
    GMimeStream *stream = g_mime_stream_mem_new_with_buffer(data, len);
    GMimeParser *parser = g_mime_parser_new_with_stream(stream);
    GMimeMessage *msg = g_mime_parser_construct_message(parser, NULL);
    g_object_unref(parser);
    g_object_unref(stream);
    if (!msg) {
        free(converted);
        return rb__docb_fail(b, RB_ERR_PARSE, "not a valid e-mail message");
    }
    struct mail m = {.b = b};
    const char *subject = g_mime_message_get_subject(msg);
    char *from = internet_address_list_to_string(g_mime_message_get_from(msg), NULL, FALSE);
    char *to = internet_address_list_to_string(g_mime_message_get_to(msg), NULL, FALSE);
    char *cc = internet_address_list_to_string(g_mime_message_get_cc(msg), NULL, FALSE);
    GDateTime *date = g_mime_message_get_date(msg);
    char *date_s = date ? g_date_time_format_iso8601(date) : NULL;
    const char *mid = g_mime_message_get_message_id(msg);
    cJSON *meta = cJSON_CreateObject();
    if (meta) {
        add_json(meta, "subject", subject);
        add_json(meta, "from", from);
        add_json(meta, "to", to);
        add_json(meta, "cc", cc);
        add_json(meta, "date", date_s);
        add_json(meta, "message_id", mid);
    }
    if (subject) {
        rb__docb_set_title(b, subject, strlen(subject));
        rb__docb_add(b, RB_INGEST_BLOCK_HEADING, 1, subject, strlen(subject));
    }
    struct rb_buf hdr;
    rb_buf_init(&hdr, 1 << 20);
    if (from && *from)
        (void)!rb_buf_printf(&hdr, "From: %s\n", from);
    if (to && *to)
        (void)!rb_buf_printf(&hdr, "To: %s\n", to);
    if (cc && *cc)
        (void)!rb_buf_printf(&hdr, "Cc: %s\n", cc);
    if (date_s)
        (void)!rb_buf_printf(&hdr, "Date: %s\n", date_s);
    if (hdr.len)
        rb__docb_add(b, RB_INGEST_BLOCK_PARAGRAPH, 0, hdr.data, hdr.len);
    rb_buf_free(&hdr);
    walk(&m, g_mime_message_get_mime_part(msg), 0);
    if (b->st == RB_OK) {
        if (m.plain) {
            rb__add_plain_paragraphs(b, m.plain, strlen(m.plain), false);
        } else if (m.html && strlen(m.html) < INT32_MAX) {
            htmlDocPtr doc = htmlReadMemory(m.html, (int)strlen(m.html), NULL, "UTF-8",
                                            HTML_PARSE_NONET | HTML_PARSE_NOERROR |
                                                HTML_PARSE_NOWARNING | HTML_PARSE_RECOVER);
            if (doc) {
                rb__html_walk(b, doc);
                xmlFreeDoc(doc);
            }
        }
    }
    if (meta) {
        cJSON *att = cJSON_AddArrayToObject(meta, "attachments");
        for (size_t i = 0; att && i < b->n_attachments; i++)
            cJSON_AddItemToArray(att, cJSON_CreateString(b->attachments[i].name));
        rb__docb_set_metadata(b, cJSON_PrintUnformatted(meta));
        cJSON_Delete(meta);
    }
    free(m.plain);
    free(m.html);
    g_free(from);
    g_free(to);
    g_free(cc);
    g_free(date_s);
    g_object_unref(msg);
    free(converted);
    return b->st;
}
