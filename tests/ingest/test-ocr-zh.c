/* A scanned Chinese PDF page (no text layer): OCR kicks in by itself. */
#include "ingest-check.h"

int main(void)
{
    struct rb_ingest_limits lim;
    rb_ingest_limits_default(&lim);
    lim.ocr_languages = "chi_sim";
    lim.ocr_dpi = 150;     /* the scan's own resolution */
    lim.ocr_max_pages = 1; /* one page keeps the test bounded */
    struct rb_ingest_doc *d = parse_shared("docs/pdf-zh/zh-briefing-1-scanned.pdf", &lim);
    if (d) {
        CHECK_EQ_INT(d->n_pages, 7);
        CHECK_EQ_INT(d->ocr_pages, 1);
        CHECK_STR(d->language, "zh");
        long p = find_block(d, -1, "泰国国会主席7月25日宣布");
        CHECK(p >= 0 && d->blocks[p].page_start == 1);
        CHECK(strstr(d->text, "远进党") != NULL);
        rb_ingest_doc_free(d);
    }
    return check_finish();
}
