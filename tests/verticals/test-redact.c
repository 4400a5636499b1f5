/* Redaction: each rule on true positives and look-alikes, validators on
 * generated valid/invalid numbers, Chinese text, hostile input, and
 * precision/recall on the labelled set built from the shared documents
 * (tests/verticals/data/redaction-eval.jsonl). */
#include <stdint.h>

#include "check.h"
#include "ragbox/verticals.h"

static struct rb_redactor *all_rules;

/* Redacts text; returns the redacted string (static buffer). */
static const char *redact(const char *text)
{
    static char out[8192];
    char *r = NULL;
    struct rb_errmsg err = {{0}};
    enum rb_status st = rb_redact_text(all_rules, text, strlen(text), &r, NULL, NULL, &err);
    CHECK_MSG(st == RB_OK, "%s", err.text);
    snprintf(out, sizeof out, "%s", r ? r : "");
    free(r);
    return out;
}

#define EXPECT(text, want) CHECK_STR(redact(text), want)

static void test_rules(void)
{
    /* cards: Luhn + network + length; separators consistent */
    EXPECT("card 4111 1111 1111 1111 ok", "card [REDACTED:CARD] ok");
    EXPECT("card 4111-1111-1111-1111.", "card [REDACTED:CARD].");
    EXPECT("amex 378282246310005", "amex [REDACTED:CARD]");
    EXPECT("bad luhn 4111 1111 1111 1112", "bad luhn 4111 1111 1111 1112");
    EXPECT("mixed 4111 1111-1111 1111", "mixed 4111 1111-1111 1111");
    EXPECT("order 1234567812345670 shipped", "order 1234567812345670 shipped"); /* Luhn ok, no network */
    EXPECT("revenue 4,111,111,111,111,111", "revenue 4,111,111,111,111,111");
    /* IBAN: country length + mod 97 */
    EXPECT("IBAN DE89 3704 0044 0532 0130 00 paid", "IBAN [REDACTED:IBAN] paid");
    EXPECT("GB82WEST12345698765432", "[REDACTED:IBAN]");
    EXPECT("GB82WEST12345698765433", "GB82WEST12345698765433");
    EXPECT("DE89 3704 0044 0532 0130 00 AND MORE", "[REDACTED:IBAN] AND MORE");
    /* SSN */
    EXPECT("SSN 123-45-6789.", "SSN [REDACTED:SSN].");
    EXPECT("SSN 666-45-6789 000-12-3456 123-00-4567 078-05-1120",
           "SSN 666-45-6789 000-12-3456 123-00-4567 078-05-1120");
    EXPECT("part no 123-45-67890", "part no 123-45-67890");
    /* Chinese resident ID: check digit, birth date, province */
    EXPECT("身份证号11010519491231002X，", "身份证号[REDACTED:CN_ID]，");
    EXPECT("身份证号110105194912310021，", "身份证号110105194912310021，");
    EXPECT("编号110105194913310028", "编号110105194913310028"); /* month 13 */
    /* phones */
    EXPECT("手机13800138000联系", "手机[REDACTED:PHONE]联系");
    EXPECT("call +86 138 0013 8000 now", "call [REDACTED:PHONE] now");
    EXPECT("电话010-62751234。", "电话[REDACTED:PHONE]。");
    EXPECT("tel (0755)86013388", "tel [REDACTED:PHONE]");
    EXPECT("Telephone: (206) 266-1000", "Telephone: [REDACTED:PHONE]");
    EXPECT("London +44 20 7946 0958.", "London [REDACTED:PHONE].");
    EXPECT("File No. 000-22513 and EIN 91-1646860", "File No. 000-22513 and EIN 91-1646860");
    EXPECT("in 2019-2020 the ratio was 12.5", "in 2019-2020 the ratio was 12.5");
    EXPECT("ID 12800138000123", "ID 12800138000123");
    /* e-mail */
    EXPECT("mail john.doe+x@example.co.uk.", "mail [REDACTED:EMAIL].");
    EXPECT("Message-ID: <abc123@mail.gmail.com>", "Message-ID: <abc123@mail.gmail.com>");
    EXPECT("not@an", "not@an");
    /* dates of birth only with context */
    EXPECT("DOB: 03/04/1961, seen 03/04/2021", "DOB: [REDACTED:DOB], seen 03/04/2021");
    EXPECT("born on March 4, 1961 in Ohio", "born on [REDACTED:DOB] in Ohio");
    EXPECT("出生日期：1990年3月7日", "出生日期：[REDACTED:DOB]");
    EXPECT("王某（女，1999年8月9日出生）", "王某（女，[REDACTED:DOB]出生）");
    EXPECT("于2016年10月27日被抓获", "于2016年10月27日被抓获");
    EXPECT("DOB: 1990-02-30", "DOB: 1990-02-30"); /* no such date */
    /* medical record numbers need their context word */
    EXPECT("MRN: 00123456.", "MRN: [REDACTED:MRN].");
    EXPECT("病历号：ZY20230518", "病历号：[REDACTED:MRN]");
    EXPECT("model 00123456", "model 00123456");
    /* accounts need their context word */
    EXPECT("account number 12345678901", "account number [REDACTED:ACCOUNT]");
    EXPECT("账号：6229 7600 9040", "账号：[REDACTED:ACCOUNT]");
    EXPECT("accounted for 12345678 units", "accounted for 12345678 units");
}

/* ---------------------------------------------------- generated numbers */

static uint64_t rng = 88172645463325252ULL;
static unsigned rnd(unsigned n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % n);
}

static char luhn_digit(const char *d, size_t n) /* check digit for d[0..n) */
{
    int sum = 0;
    for (size_t i = 0; i < n; i++) {
        int v = d[n - 1 - i] - '0';
        if (i % 2 == 0) {
            v *= 2;
            if (v > 9)
                v -= 9;
        }
        sum += v;
    }
    return (char)('0' + (10 - sum % 10) % 10);
}

static void gen_card(char *out, bool valid)
{
    static const char *const prefixes[] = {"4", "51", "55", "2221", "6011", "62"};
    const char *p = prefixes[rnd(6)];
    size_t n = 16;
    strcpy(out, p);
    for (size_t i = strlen(p); i < n - 1; i++)
        out[i] = (char)('0' + rnd(10));
    out[n - 1] = luhn_digit(out, n - 1);
    if (!valid)
        out[n - 1] = (char)('0' + (out[n - 1] - '0' + 1 + rnd(9)) % 10);
    out[n] = '\0';
}

static void gen_cn_id(char *out, bool valid)
{
    static const char *const regions[] = {"110105", "310104", "440305", "510107", "330106"};
    static const int w[] = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};
    snprintf(out, 19, "%s%04u%02u%02u%03u", regions[rnd(5)], 1950 + rnd(60), 1 + rnd(12),
             1 + rnd(28), rnd(1000));
    int sum = 0;
    for (int i = 0; i < 17; i++)
        sum += (out[i] - '0') * w[i];
    char c = "10X98765432"[sum % 11];
    if (!valid)
        c = "10X98765432"[(sum + 1 + rnd(10)) % 11];
    out[17] = c;
    out[18] = '\0';
}

static void gen_iban(char *out, bool valid)
{
    /* DE: 8-digit bank code + 10-digit account; check digits by mod 97 */
    char bban[19];
    for (int i = 0; i < 18; i++)
        bban[i] = (char)('0' + rnd(10));
    bban[18] = '\0';
    unsigned rem = 0;
    char tmp[40];
    snprintf(tmp, sizeof tmp, "%s131400", bban); /* D=13 E=14, check 00 */
    for (const char *p = tmp; *p; p++)
        rem = (rem * 10 + (unsigned)(*p - '0')) % 97;
    unsigned check = 98 - rem;
    if (!valid)
        check = (check + 1 + rnd(90)) % 97 + 2;
    snprintf(out, 32, "DE%02u%s", check, bban);
}

static void test_generated(void)
{
    int tp = 0, fn = 0, fp = 0, total_invalid = 0;
    char num[40], text[128];
    for (int i = 0; i < 300; i++) {
        bool valid = i % 2 == 0;
        int kind = i % 6 / 2; /* 0 card, 1 cn id, 2 iban */
        const char *tag = kind == 0 ? "[REDACTED:CARD]" : kind == 1 ? "[REDACTED:CN_ID]" : "[REDACTED:IBAN]";
        if (kind == 0)
            gen_card(num, valid);
        else if (kind == 1)
            gen_cn_id(num, valid);
        else
            gen_iban(num, valid);
        snprintf(text, sizeof text, "编号 %s 已登记", num);
        const char *r = redact(text);
        bool hit = strstr(r, tag) != NULL;
        if (valid) {
            hit ? tp++ : fn++;
            if (!hit)
                fprintf(stderr, "  missed valid %s\n", num);
        } else {
            total_invalid++;
            if (hit) {
                fp++;
                fprintf(stderr, "  redacted invalid %s\n", num);
            }
        }
        /* validators agree with the generator */
        if (kind == 0)
            CHECK(rb_pii_luhn_valid(num, strlen(num)) == valid);
        else if (kind == 1)
            CHECK(rb_pii_cn_id_valid(num, strlen(num)) == valid);
        else
            CHECK(rb_pii_iban_valid(num, strlen(num)) == valid);
    }
    fprintf(stderr, "generated checksum numbers: recall %d/%d, invalid redacted %d/%d\n", tp,
            tp + fn, fp, total_invalid);
    CHECK_EQ_INT(fn, 0);
    CHECK_EQ_INT(fp, 0);
    /* SSN rules */
    CHECK(rb_pii_ssn_valid("123-45-6789", 11));
    CHECK(!rb_pii_ssn_valid("900-45-6789", 11));
    CHECK(!rb_pii_ssn_valid("123-45-0000", 11));
}

/* ---------------------------------------------------- the labelled set */

struct tally {
    int tp, fp, fn;
};

static void test_eval_set(void)
{
    const char *src = getenv("RAGBOX_SOURCE");
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/verticals/data/redaction-eval.jsonl", src ? src : ".");
    char *data = NULL;
    size_t len = 0;
    REQUIRE(rb_fs_read_file(path, 16 << 20, &data, &len) == RB_OK);
    struct tally t[RB_PII_COUNT] = {{0}};
    int rows = 0;
    for (char *line = data; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        cJSON *row = NULL;
        struct rb_errmsg err;
        REQUIRE(rb_json_parse(line, strlen(line), 8, &row, &err) == RB_OK);
        rows++;
        const char *text = rb_json_str(row, "text");
        const cJSON *labels = cJSON_GetObjectItem(row, "labels");
        int n_labels = cJSON_GetArraySize(labels);
        bool used[64] = {0};
        struct rb_redact_span *spans = NULL;
        size_t n = 0;
        REQUIRE(rb_redact_find(all_rules, text, strlen(text), &spans, &n, &err) == RB_OK);
        for (size_t i = 0; i < n; i++) {
            size_t sl = spans[i].end - spans[i].start;
            bool matched = false;
            for (int k = 0; k < n_labels && k < 64 && !matched; k++) {
                const cJSON *lab = cJSON_GetArrayItem(labels, k);
                const char *lt = rb_json_str(lab, "text");
                enum rb_pii_type ty;
                if (used[k] || rb_pii_type_parse(rb_json_str(lab, "type"), &ty) != RB_OK ||
                    ty != spans[i].type || strlen(lt) != sl ||
                    memcmp(lt, text + spans[i].start, sl) != 0)
                    continue;
                used[k] = matched = true;
            }
            if (matched) {
                t[spans[i].type].tp++;
            } else {
                t[spans[i].type].fp++;
                fprintf(stderr, "  FP %-7s %.*s   <- %s\n", rb_pii_type_name(spans[i].type),
                        (int)sl, text + spans[i].start, rb_json_str(row, "source"));
            }
        }
        for (int k = 0; k < n_labels && k < 64; k++) {
            if (used[k])
                continue;
            const cJSON *lab = cJSON_GetArrayItem(labels, k);
            enum rb_pii_type ty;
            REQUIRE(rb_pii_type_parse(rb_json_str(lab, "type"), &ty) == RB_OK);
            t[ty].fn++;
            fprintf(stderr, "  FN %-7s %s   <- %s\n", rb_pii_type_name(ty),
                    rb_json_str(lab, "text"), rb_json_str(row, "source"));
        }
        free(spans);
        cJSON_Delete(row);
        line = nl ? nl + 1 : NULL;
    }
    free(data);
    fprintf(stderr, "labelled set: %d lines from ../shared\n%-8s %4s %4s %4s %9s %7s\n", rows,
            "type", "TP", "FP", "FN", "precision", "recall");
    struct tally sum = {0};
    for (int i = 0; i < RB_PII_COUNT; i++) {
        sum.tp += t[i].tp;
        sum.fp += t[i].fp;
        sum.fn += t[i].fn;
        if (!t[i].tp && !t[i].fp && !t[i].fn)
            continue;
        double p = t[i].tp + t[i].fp ? (double)t[i].tp / (t[i].tp + t[i].fp) : 1.0;
        double r = t[i].tp + t[i].fn ? (double)t[i].tp / (t[i].tp + t[i].fn) : 1.0;
        fprintf(stderr, "%-8s %4d %4d %4d %9.3f %7.3f\n", rb_pii_type_name((enum rb_pii_type)i),
                t[i].tp, t[i].fp, t[i].fn, p, r);
        if (t[i].tp + t[i].fn >= 5) {
            CHECK_MSG(r >= 0.85, "%s recall %.3f", rb_pii_type_name((enum rb_pii_type)i), r);
        }
        if (t[i].tp + t[i].fp >= 5) {
            CHECK_MSG(p >= 0.90, "%s precision %.3f", rb_pii_type_name((enum rb_pii_type)i), p);
        }
    }
    double p = (double)sum.tp / (sum.tp + sum.fp), r = (double)sum.tp / (sum.tp + sum.fn);
    fprintf(stderr, "%-8s %4d %4d %4d %9.3f %7.3f\n", "all", sum.tp, sum.fp, sum.fn, p, r);
    CHECK(rows >= 300);
    CHECK(sum.tp + sum.fn >= 60);
    CHECK(p >= 0.95);
    CHECK(r >= 0.9);
}

static void test_hostile(void)
{
    struct rb_errmsg err = {{0}};
    struct rb_redact_span *spans = NULL;
    size_t n = 0;
    const char *bad = "bad \xff utf8";
    CHECK(rb_redact_find(all_rules, bad, strlen(bad), &spans, &n, &err) == RB_ERR_ENCODING);
    CHECK(spans == NULL && n == 0);
    /* the audit hook sanitises instead of failing */
    const char *dirty = "x\xff 4111 1111 1111 1111";
    char *h = rb_redact_audit_hook(all_rules, dirty, strlen(dirty));
    CHECK(h && strstr(h, "[REDACTED:CARD]") && !strstr(h, "4111"));
    free(h);
    /* empty input, and a long run of digits (no catastrophic backtracking) */
    CHECK(rb_redact_find(all_rules, "", 0, &spans, &n, &err) == RB_OK && n == 0);
    size_t big = 200000;
    char *digits = malloc(big + 1);
    for (size_t i = 0; i < big; i++)
        digits[i] = (char)('0' + i % 10);
    digits[big] = '\0';
    CHECK(rb_redact_find(all_rules, digits, big, &spans, &n, &err) == RB_OK);
    free(spans);
    free(digits);
    /* a broken account context is a configuration error naming the rule */
    struct rb_redactor_options o = {.types = RB_PII_MASK(RB_PII_ACCOUNT), .account_context = "(unclosed"};
    struct rb_redactor *r = NULL;
    CHECK(rb_redactor_create(&o, &r, &err) == RB_ERR_CONFIG && !r);
    CHECK(strstr(err.text, "ACCOUNT") != NULL);
    /* type masks: only e-mail */
    o = (struct rb_redactor_options){.types = RB_PII_MASK(RB_PII_EMAIL)};
    REQUIRE(rb_redactor_create(&o, &r, &err) == RB_OK);
    char *out = NULL;
    size_t cnt = 0;
    const char *t = "a@b.com 4111 1111 1111 1111";
    CHECK(rb_redact_text(r, t, strlen(t), &out, NULL, &cnt, &err) == RB_OK);
    CHECK_STR(out, "[REDACTED:EMAIL] 4111 1111 1111 1111");
    CHECK_EQ_INT(cnt, 1);
    free(out);
    rb_redactor_free(r);
    enum rb_pii_type ty;
    CHECK(rb_pii_type_parse("cn_id", &ty) == RB_OK && ty == RB_PII_CN_ID);
    CHECK(rb_pii_type_parse("bogus", &ty) == RB_ERR_INVALID);
}

int main(void)
{
    struct rb_errmsg err = {{0}};
    REQUIRE(rb_redactor_create(NULL, &all_rules, &err) == RB_OK);
    test_rules();
    test_generated();
    test_eval_set();
    test_hostile();
    rb_redactor_free(all_rules);
    return check_finish();
}
