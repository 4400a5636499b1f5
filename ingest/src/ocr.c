/* OCR through tesseract (LSTM, Debian's eng + chi_sim data) and leptonica.
 * Every recognition has a deadline (tesseract's progress monitor), on top of
 * the sandbox's wall-clock limit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <leptonica/allheaders.h>
#include <tesseract/capi.h>

#include "ingest-impl.h"

struct rb__ocr {
    TessBaseAPI *api;
    const struct rb_ingest_limits *lim;
};

/* Largest page image recognised (pixels per side): bounds memory and time. */
#define OCR_MAX_SIDE 8000

enum rb_status rb__ocr_open(const struct rb_ingest_limits *lim, struct rb__ocr **out,
                            struct rb_errmsg *err)
{
    *out = NULL;
    /* One thread: the appliance's cores are shared with the other parses. */
    setenv("OMP_THREAD_LIMIT", "1", 0);
    setMsgSeverity(L_SEVERITY_NONE);
    struct rb__ocr *o = calloc(1, sizeof *o);
    if (!o)
        return RB_ERR_NOMEM;
    o->lim = lim;
    o->api = TessBaseAPICreate();
    const char *langs = lim->ocr_languages && *lim->ocr_languages ? lim->ocr_languages : "eng";
    if (!o->api || TessBaseAPIInit3(o->api, NULL, langs) != 0) {
        if (o->api)
            TessBaseAPIDelete(o->api);
        free(o);
        return err ? rb_errmsg_set(err, RB_ERR_UNSUPPORTED,
                                   "OCR unavailable: tesseract could not load languages '%s'",
                                   langs)
                   : RB_ERR_UNSUPPORTED;
    }
    TessBaseAPISetPageSegMode(o->api, PSM_AUTO);
    *out = o;
    return RB_OK;
}

void rb__ocr_close(struct rb__ocr *ocr)
{
    if (!ocr)
        return;
    TessBaseAPIEnd(ocr->api);
    TessBaseAPIDelete(ocr->api);
    free(ocr);
}

/* Removes the spaces tesseract puts between CJK characters. */
static void join_cjk(char *s)
{
    size_t w = 0, n = strlen(s);
    uint32_t prev = 0;
    for (size_t r = 0; r < n;) {
        uint32_t cp;
        int k = rb_utf8_decode(s + r, n - r, &cp);
        if (cp == ' ' && rb_utf8_is_cjk(prev)) {
            size_t q = r;
            while (q < n && s[q] == ' ')
                q++;
            uint32_t next = 0;
            if (q < n)
                rb_utf8_decode(s + q, n - q, &next);
            if (rb_utf8_is_cjk(next)) {
                r = q;
                continue;
            }
        }
        memmove(s + w, s + r, (size_t)k);
        w += (size_t)k;
        r += (size_t)k;
        prev = cp;
    }
    s[w] = '\0';
}

static enum rb_status recognise(struct rb__ocr *ocr, char **text, struct rb_errmsg *err)
{
    ETEXT_DESC *mon = TessMonitorCreate();
    if (!mon)
        return RB_ERR_NOMEM;
    TessMonitorSetDeadlineMSecs(mon, ocr->lim->ocr_page_timeout_ms);
    int rc = TessBaseAPIRecognize(ocr->api, mon);
    TessMonitorDelete(mon);
    if (rc != 0) {
        TessBaseAPIClear(ocr->api);
        return err ? rb_errmsg_set(err, RB_ERR_TIMEOUT, "OCR failed or exceeded %d ms per page",
                                   ocr->lim->ocr_page_timeout_ms)
                   : RB_ERR_TIMEOUT;
    }
    char *t = TessBaseAPIGetUTF8Text(ocr->api);
    TessBaseAPIClear(ocr->api);
    *text = rb_strdup(t ? t : "");
    TessDeleteText(t);
    if (!*text)
        return RB_ERR_NOMEM;
    join_cjk(*text);
    return RB_OK;
}

enum rb_status rb__ocr_pixels(struct rb__ocr *ocr, const unsigned char *pixels, int width,
                              int height, int bytes_per_pixel, int bytes_per_line, int dpi,
                              char **text, struct rb_errmsg *err)
{
    *text = NULL;
    if (width <= 0 || height <= 0 || width > OCR_MAX_SIDE || height > OCR_MAX_SIDE)
        return err ? rb_errmsg_set(err, RB_ERR_TOO_LARGE, "image %dx%d too large for OCR", width,
                                   height)
                   : RB_ERR_TOO_LARGE;
    TessBaseAPISetImage(ocr->api, pixels, width, height, bytes_per_pixel, bytes_per_line);
    TessBaseAPISetSourceResolution(ocr->api, dpi);
    return recognise(ocr, text, err);
}

static enum rb_status ocr_pix(struct rb__ocr *ocr, PIX *pix, char **text, struct rb_errmsg *err)
{
    l_int32 w = pixGetWidth(pix), h = pixGetHeight(pix);
    if (w <= 0 || h <= 0 || w > OCR_MAX_SIDE || h > OCR_MAX_SIDE)
        return err ? rb_errmsg_set(err, RB_ERR_TOO_LARGE, "image %dx%d too large for OCR", w, h)
                   : RB_ERR_TOO_LARGE;
    TessBaseAPISetImage2(ocr->api, pix);
    l_int32 xres = pixGetXRes(pix);
    TessBaseAPISetSourceResolution(ocr->api, xres >= 70 && xres <= 1200 ? xres : 300);
    return recognise(ocr, text, err);
}

enum rb_status rb__ocr_image(struct rb__ocr *ocr, const void *data, size_t len, char **text,
                             struct rb_errmsg *err)
{
    *text = NULL;
    PIX *pix = pixReadMem(data, len);
    if (!pix)
        return err ? rb_errmsg_set(err, RB_ERR_PARSE, "image could not be decoded") : RB_ERR_PARSE;
    enum rb_status st = ocr_pix(ocr, pix, text, err);
    pixDestroy(&pix);
    return st;
}

enum rb_status rb__parse_image(struct rb__docb *b, const void *data, size_t len)
{
    if (!b->lim->ocr)
        return rb__docb_fail(b, RB_ERR_UNSUPPORTED, "image needs OCR, which is disabled");
    l_int32 format = 0;
    if (findFileFormatBuffer(data, &format) != 0 || format == IFF_UNKNOWN)
        return rb__docb_fail(b, RB_ERR_PARSE, "image format not recognised");
    struct rb__ocr *ocr = NULL;
    enum rb_status st = rb__ocr_open(b->lim, &ocr, b->err);
    if (st != RB_OK)
        return rb__docb_fail(b, st, "%s", b->err ? b->err->text : "OCR unavailable");
    bool tiff = format == IFF_TIFF || (format >= IFF_TIFF_PACKBITS && format <= IFF_TIFF_JPEG);
    for (int page = 0; b->st == RB_OK; page++) {
        if (page >= b->lim->ocr_max_pages || page >= b->lim->max_pages)
            break;
        PIX *pix = tiff ? pixReadMemTiff(data, len, page) : (page ? NULL : pixReadMem(data, len));
        if (!pix) {
            if (page == 0)
                rb__docb_fail(b, RB_ERR_PARSE, "image could not be decoded");
            break;
        }
        char *text = NULL;
        st = ocr_pix(ocr, pix, &text, b->err);
        pixDestroy(&pix);
        if (st != RB_OK) {
            rb__docb_fail(b, st, "%s", b->err ? b->err->text : "OCR failed");
            break;
        }
        rb__docb_page(b);
        b->ocr_pages++;
        rb__add_plain_paragraphs(b, text, strlen(text), false);
        free(text);
    }
    rb__ocr_close(ocr);
    return b->st;
}
