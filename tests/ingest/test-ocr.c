/* OCR of a real scanned image (English), used automatically for images. */
#include "ingest-check.h"

int main(void)
{
    struct rb_ingest_limits lim;
    rb_ingest_limits_default(&lim);
    lim.ocr_languages = "eng"; /* keep the test fast; the default adds chi_sim */
    struct rb_ingest_doc *d = parse_shared("docs/image/english-and-korean.png", &lim);
    if (d) {
        CHECK_EQ_INT(d->format, RB_INGEST_FORMAT_IMAGE);
        CHECK_EQ_INT(d->ocr_pages, 1);
        CHECK_EQ_INT(d->n_pages, 1);
        CHECK(find_block(d, -1, "RULES AND INSTRUCTIONS") >= 0);
        CHECK(strstr(d->text, "Use all your accounts") != NULL);
        rb_ingest_doc_free(d);
    }
    /* OCR disabled: an image is a clear per-file error */
    lim.ocr = false;
    struct rb_errmsg e = {{0}};
    d = NULL;
    CHECK_EQ_INT(rb_ingest_parse_file(check_shared("docs/image/english-and-korean.png"), &lim, &d, &e),
                 RB_ERR_UNSUPPORTED);
    CHECK(strstr(e.text, "OCR") != NULL);
    return check_finish();
}
