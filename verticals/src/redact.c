/* Redaction: PCRE2 candidate patterns (UTF, compiled once, JIT) followed by
 * validators (check digits, dates, numbering-plan rules) so that numbers that
 * only look like personal data are left alone. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ragbox/verticals.h"

static const char *const pii_names[] = {
#define RB__PII_NAME(name, tag, desc) tag,
    RB_PII_TABLE(RB__PII_NAME)
#undef RB__PII_NAME
};
static const char *const pii_desc[] = {
#define RB__PII_DESC(name, tag, desc) desc,
    RB_PII_TABLE(RB__PII_DESC)
#undef RB__PII_DESC
};

const char *rb_pii_type_name(enum rb_pii_type t)
{
    return (int)t >= 0 && t < RB_PII_COUNT ? pii_names[t] : "UNKNOWN";
}

const char *rb_pii_type_description(enum rb_pii_type t)
{
    return (int)t >= 0 && t < RB_PII_COUNT ? pii_desc[t] : "unknown";
}

enum rb_status rb_pii_type_parse(const char *name, enum rb_pii_type *out)
{
    for (int i = 0; name && i < RB_PII_COUNT; i++) {
        if (strcasecmp(name, pii_names[i]) == 0) {
            *out = (enum rb_pii_type)i;
            return RB_OK;
        }
    }
    return RB_ERR_INVALID;
}

/* =============================================================== validators */

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Digits of text with separators (space, '-', '.') removed; false if any
 * other character appears or more than max digits. */
static bool collect_digits(const char *text, size_t len, char *out, size_t max, size_t *n)
{
    *n = 0;
    for (size_t i = 0; i < len; i++) {
        if (is_digit(text[i])) {
            if (*n >= max)
                return false;
            out[(*n)++] = text[i];
        } else if (text[i] != ' ' && text[i] != '-' && text[i] != '.') {
            return false;
        }
    }
    return true;
}

bool rb_pii_luhn_valid(const char *digits, size_t len)
{
    char d[32];
    size_t n;
    if (!collect_digits(digits, len, d, sizeof d, &n) || n < 2)
        return false;
    int sum = 0;
    for (size_t i = 0; i < n; i++) {
        int v = d[n - 1 - i] - '0';
        if (i % 2 == 1) {
            v *= 2;
            if (v > 9)
                v -= 9;
        }
        sum += v;
    }
    return sum % 10 == 0;
}

/* Issuer prefixes and lengths of the networks in use (ISO/IEC 7812 IINs). */
static bool card_network_ok(const char *d, size_t n)
{
    int p1 = d[0] - '0', p2 = p1 * 10 + (d[1] - '0');
    int p3 = p2 * 10 + (d[2] - '0'), p4 = p3 * 10 + (d[3] - '0');
    if (p1 == 4)
        return n == 13 || n == 16 || n == 19;                        /* Visa */
    if ((p2 >= 51 && p2 <= 55) || (p4 >= 2221 && p4 <= 2720))
        return n == 16;                                              /* Mastercard */
    if (p2 == 34 || p2 == 37)
        return n == 15;                                              /* Amex */
    if (p4 == 6011 || p2 == 65 || (p3 >= 644 && p3 <= 649))
        return n >= 16 && n <= 19;                                   /* Discover */
    if (p2 == 35)
        return n >= 16 && n <= 19;                                   /* JCB */
    if (p2 == 62 || p2 == 81)
        return n >= 16 && n <= 19;                                   /* UnionPay */
    if (p2 == 36 || p2 == 38 || p2 == 39 || (p3 >= 300 && p3 <= 305))
        return n >= 14 && n <= 19;                                   /* Diners */
    if (p2 == 50 || (p2 >= 56 && p2 <= 69))
        return n >= 12 && n <= 19;                                   /* Maestro */
    return false;
}

static bool card_valid(const char *text, size_t len)
{
    char d[32];
    size_t n;
    if (!collect_digits(text, len, d, sizeof d, &n) || n < 13 || n > 19)
        return false;
    /* Separators, when present, are all the same character. */
    char sep = 0;
    for (size_t i = 0; i < len; i++) {
        if (!is_digit(text[i])) {
            if (sep && text[i] != sep)
                return false;
            sep = text[i];
            if (i + 1 < len && !is_digit(text[i + 1]))
                return false;
        }
    }
    if (sep == '.')
        return false;
    return card_network_ok(d, n) && rb_pii_luhn_valid(d, n);
}

/* IBAN lengths by country (SWIFT IBAN registry). */
static const struct {
    char cc[3];
    unsigned char len;
} iban_lengths[] = {
    {"AD", 24}, {"AE", 23}, {"AL", 28}, {"AT", 20}, {"AZ", 28}, {"BA", 20}, {"BE", 16},
    {"BG", 22}, {"BH", 22}, {"BR", 29}, {"BY", 28}, {"CH", 21}, {"CR", 22}, {"CY", 28},
    {"CZ", 24}, {"DE", 22}, {"DK", 18}, {"DO", 28}, {"EE", 20}, {"EG", 29}, {"ES", 24},
    {"FI", 18}, {"FO", 18}, {"FR", 27}, {"GB", 22}, {"GE", 22}, {"GI", 23}, {"GL", 18},
    {"GR", 27}, {"GT", 28}, {"HR", 21}, {"HU", 28}, {"IE", 22}, {"IL", 23}, {"IQ", 23},
    {"IS", 26}, {"IT", 27}, {"JO", 30}, {"KW", 30}, {"KZ", 20}, {"LB", 28}, {"LC", 32},
    {"LI", 21}, {"LT", 20}, {"LU", 20}, {"LV", 21}, {"LY", 25}, {"MC", 27}, {"MD", 24},
    {"ME", 22}, {"MK", 19}, {"MR", 27}, {"MT", 31}, {"MU", 30}, {"NL", 18}, {"NO", 15},
    {"PK", 24}, {"PL", 28}, {"PS", 29}, {"PT", 25}, {"QA", 29}, {"RO", 24}, {"RS", 22},
    {"SA", 24}, {"SC", 31}, {"SD", 18}, {"SE", 24}, {"SI", 19}, {"SK", 24}, {"SM", 27},
    {"ST", 25}, {"SV", 28}, {"TL", 23}, {"TN", 24}, {"TR", 26}, {"UA", 29}, {"VA", 22},
    {"VG", 24}, {"XK", 20},
};

static int iban_country_length(const char *cc)
{
    for (size_t i = 0; i < RB_ARRAY_LEN(iban_lengths); i++)
        if (iban_lengths[i].cc[0] == cc[0] && iban_lengths[i].cc[1] == cc[1])
            return iban_lengths[i].len;
    return 0;
}

bool rb_pii_iban_valid(const char *text, size_t len)
{
    char s[40];
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (c == ' ')
            continue;
        if (c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        if (!((c >= 'A' && c <= 'Z') || is_digit(c)) || n >= sizeof s)
            return false;
        s[n++] = c;
    }
    if (n < 15 || !(s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z') || !is_digit(s[2]) ||
        !is_digit(s[3]))
        return false;
    if ((size_t)iban_country_length(s) != n)
        return false;
    /* ISO 7064 mod 97-10 over BBAN + country + check, letters as 10..35. */
    unsigned rem = 0;
    for (size_t k = 0; k < n; k++) {
        char c = s[(k + 4) % n];
        if (is_digit(c))
            rem = (rem * 10 + (unsigned)(c - '0')) % 97;
        else
            rem = (rem * 100 + (unsigned)(c - 'A' + 10)) % 97;
    }
    return rem == 1;
}

bool rb_pii_ssn_valid(const char *text, size_t len)
{
    char d[12];
    size_t n;
    if (!collect_digits(text, len, d, sizeof d, &n) || n != 9)
        return false;
    int area = (d[0] - '0') * 100 + (d[1] - '0') * 10 + (d[2] - '0');
    int group = (d[3] - '0') * 10 + (d[4] - '0');
    int serial = (d[5] - '0') * 1000 + (d[6] - '0') * 100 + (d[7] - '0') * 10 + (d[8] - '0');
    if (area == 0 || area == 666 || area >= 900 || group == 0 || serial == 0)
        return false;
    /* Numbers published in advertising and never valid (SSA). */
    if ((area == 78 && group == 5 && serial == 1120) || (area == 219 && group == 9 && serial == 9999))
        return false;
    return true;
}

static bool leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static bool date_ok(int y, int m, int d)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m < 1 || m > 12 || d < 1)
        return false;
    int max = mdays[m - 1] + (m == 2 && leap(y));
    return d <= max;
}

static int num(const char *s, size_t n)
{
    int v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (s[i] - '0');
    return v;
}

bool rb_pii_cn_id_valid(const char *text, size_t len)
{
    if (len != 18)
        return false;
    for (size_t i = 0; i < 17; i++)
        if (!is_digit(text[i]))
            return false;
    char last = text[17];
    if (!is_digit(last) && last != 'X' && last != 'x')
        return false;
    /* Province-level division codes (GB/T 2260). */
    static const int provinces[] = {11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37,
                                    41, 42, 43, 44, 45, 46, 50, 51, 52, 53, 54, 61, 62, 63, 64,
                                    65, 71, 81, 82, 83, 91};
    int prov = num(text, 2);
    bool known = false;
    for (size_t i = 0; i < RB_ARRAY_LEN(provinces); i++)
        known = known || provinces[i] == prov;
    if (!known)
        return false;
    int y = num(text + 6, 4), m = num(text + 10, 2), d = num(text + 12, 2);
    if (y < 1900 || y > 2100 || !date_ok(y, m, d))
        return false;
    /* GB 11643-1999, ISO 7064 MOD 11-2. */
    static const int weights[] = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};
    static const char check[] = "10X98765432";
    int sum = 0;
    for (int i = 0; i < 17; i++)
        sum += (text[i] - '0') * weights[i];
    char want = check[sum % 11];
    return (last == 'x' ? 'X' : last) == want;
}

/* Chinese mobile: 11 digits 1[3-9]x, optional +86 / 86 prefix. */
static bool cn_mobile_ok(const char *d, size_t n)
{
    if (n == 13 && d[0] == '8' && d[1] == '6') {
        d += 2;
        n -= 2;
    }
    return n == 11 && d[0] == '1' && d[1] >= '3' && d[1] <= '9';
}

/* ========================================================= the patterns */

/* Boundaries are ASCII-only on purpose: Chinese text runs digits straight
 * into Han characters ("身份证号110101..."), which \b would not split. */
#define NB "(?<![0-9A-Za-z])"
#define NA "(?![0-9A-Za-z])"
#define MONTHS                                                                                     \
    "(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|"             \
    "Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\\.?"
#define DATE                                                                                       \
    "(?<date>(?:19|20)\\d{2}\\s*[-/.年]\\s*\\d{1,2}\\s*[-/.月]\\s*\\d{1,2}(?:\\s*日)?|"                      \
    "\\d{1,2}[-/.]\\d{1,2}[-/.](?:19|20)?\\d{2}|"                                                  \
    MONTHS "\\s+\\d{1,2}(?:st|nd|rd|th)?,?\\s+(?:19|20)\\d{2}|"                                    \
    "\\d{1,2}(?:st|nd|rd|th)?\\s+" MONTHS "\\s+(?:19|20)\\d{2})"

enum rule_kind { K_CARD, K_IBAN, K_SSN, K_CN_ID, K_MOBILE, K_LANDLINE, K_NANP, K_E164, K_EMAIL,
                 K_DOB, K_MRN, K_ACCOUNT, K_COUNT };

static const struct {
    enum rb_pii_type type;
    const char *pattern; /* a named group "v" is the span when present, else the match */
} rules[K_COUNT] = {
    [K_CARD] = {RB_PII_CARD, NB "(?:\\d[ -]?){12,18}\\d" NA},
    [K_IBAN] = {RB_PII_IBAN, NB "[A-Z]{2}\\d{2}(?: ?[A-Z0-9]){11,30}" NA},
    [K_SSN] = {RB_PII_SSN, "(?<![0-9A-Za-z-])\\d{3}([- ])\\d{2}\\1\\d{4}(?![0-9A-Za-z-])"},
    [K_CN_ID] = {RB_PII_CN_ID, NB "[1-9]\\d{5}(?:18|19|20)\\d{2}(?:0[1-9]|1[0-2])"
                               "(?:0[1-9]|[12]\\d|3[01])\\d{3}[\\dXx]" NA},
    [K_MOBILE] = {RB_PII_PHONE, "(?<![0-9A-Za-z+])(?:(?:\\+|00)?86[ -]?)?1[3-9]\\d(?:[ -]?\\d{4}){2}" NA},
    [K_LANDLINE] = {RB_PII_PHONE, "(?<![0-9A-Za-z+])(?:(?:\\+|00)?86[ -]?)?(?:\\(0\\d{2,3}\\)\\s?|0\\d{2,3}-)"
                                  "[2-9]\\d{6,7}(?:-\\d{1,5})?" NA},
    [K_NANP] = {RB_PII_PHONE, "(?<![0-9A-Za-z+])(?:\\+?1[ .-]?)?(?:\\([2-9]\\d{2}\\)\\s?|[2-9]\\d{2}[-. ])"
                              "[2-9]\\d{2}[-. ]\\d{4}" NA},
    [K_E164] = {RB_PII_PHONE, "(?<![0-9A-Za-z+])\\+[1-9]\\d{0,2}(?:[ .-]?\\(?\\d{1,4}\\)?){2,5}" NA},
    [K_EMAIL] = {RB_PII_EMAIL, "(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.)+[A-Za-z]{2,24}(?![A-Za-z0-9-])"},
    [K_DOB] = {RB_PII_DOB, "(?:(?i)\\b(?:DOB|D\\.O\\.B\\.?|date\\s+of\\s+birth|birth\\s*date|birthday|born(?:\\s+on)?)\\b|"
                           "出生日期|出生年月日?|出生于|生日)\\s*[:：,]?\\s*(?-i)" DATE},
    [K_MRN] = {RB_PII_MRN, "(?:(?i)\\b(?:MRN|medical\\s+record\\s+(?:number|no\\.?|#)|patient\\s+(?:id|number|no\\.?)|"
                           "chart\\s+(?:number|no\\.?))|病历号|病案号|住院号|门诊号)(?-i)\\s*(?:[:：#]|is|no\\.?)?\\s*"
                           "(?<v>(?=[A-Z0-9-]*\\d{4})[A-Z0-9][A-Z0-9-]{4,19})" NA},
    [K_ACCOUNT] = {RB_PII_ACCOUNT, NULL /* built from the context words */},
};

#define DEFAULT_ACCOUNT_CONTEXT                                                                    \
    "(?i:account(?:\\s+(?:number|no\\.?|#))?|acct\\.?(?:\\s*(?:number|no\\.?|#))?|a/c(?:\\s*no\\.?)?)|" \
    "账号|账户|帐号|帐户|卡号"

/* Priority when spans overlap (lower wins): strict validators first. */
static const int priority[K_COUNT] = {
    [K_EMAIL] = 0, [K_IBAN] = 1, [K_CN_ID] = 2, [K_CARD] = 3, [K_SSN] = 4, [K_MRN] = 5,
    [K_ACCOUNT] = 6, [K_DOB] = 7, [K_MOBILE] = 8, [K_LANDLINE] = 9, [K_NANP] = 10, [K_E164] = 11,
};

struct rb_redactor {
    unsigned types;
    pcre2_code *code[K_COUNT]; /* NULL when its type is off */
    bool jit[K_COUNT];
};

void rb_redactor_free(struct rb_redactor *r)
{
    if (!r)
        return;
    for (int k = 0; k < K_COUNT; k++)
        pcre2_code_free(r->code[k]);
    free(r);
}

unsigned rb_redactor_types(const struct rb_redactor *r)
{
    return r->types;
}

enum rb_status rb_redactor_create(const struct rb_redactor_options *o, struct rb_redactor **out,
                                  struct rb_errmsg *err)
{
    *out = NULL;
    struct rb_redactor *r = calloc(1, sizeof *r);
    if (!r)
        return rb_errmsg_set(err, RB_ERR_NOMEM, "out of memory");
    r->types = o && o->types ? (o->types & RB_PII_ALL) : RB_PII_ALL;
    for (int k = 0; k < K_COUNT; k++) {
        if (!(r->types & RB_PII_MASK(rules[k].type)))
            continue;
        char *owned = NULL;
        const char *pattern = rules[k].pattern;
        if (k == K_ACCOUNT) {
            const char *ctx = o && o->account_context ? o->account_context : DEFAULT_ACCOUNT_CONTEXT;
            owned = rb_asprintf("(?:%s)\\s*(?:[:：#]|is)?\\s*(?<v>\\d(?:[ -]?\\d){7,29})" NA, ctx);
            if (!owned) {
                rb_redactor_free(r);
                return rb_errmsg_set(err, RB_ERR_NOMEM, "out of memory");
            }
            pattern = owned;
        }
        int code;
        PCRE2_SIZE off;
        r->code[k] = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &code,
                                   &off, NULL);
        if (!r->code[k]) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(code, msg, sizeof msg);
            enum rb_status st = rb_errmsg_set(
                err, RB_ERR_CONFIG, "redaction rule %s: pattern error at offset %zu: %s%s",
                rb_pii_type_name(rules[k].type), (size_t)off, (const char *)msg,
                k == K_ACCOUNT ? " (check [redaction] account_context)" : "");
            free(owned);
            rb_redactor_free(r);
            return st;
        }
        free(owned);
        r->jit[k] = pcre2_jit_compile(r->code[k], PCRE2_JIT_COMPLETE) == 0;
    }
    *out = r;
    return RB_OK;
}

/* =================================================================== find */

struct cand {
    enum rb_pii_type type;
    int prio;
    size_t start, end;
};

struct cands {
    struct cand *v;
    size_t n, cap;
};

static bool push(struct cands *c, enum rb_pii_type t, int prio, size_t s, size_t e)
{
    if (c->n == c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 32;
        if (ncap > ((size_t)1 << 24))
            return false;
        struct cand *g = realloc(c->v, ncap * sizeof *g);
        if (!g)
            return false;
        c->v = g;
        c->cap = ncap;
    }
    c->v[c->n++] = (struct cand){t, prio, s, e};
    return true;
}

/* Validates a candidate; may narrow [*s, *e). */
static bool validate(int k, const char *text, size_t *s, size_t *e, pcre2_match_data *md,
                     const pcre2_code *code)
{
    const char *p = text + *s;
    size_t n = *e - *s;
    char d[40];
    size_t nd;
    switch (k) {
    case K_CARD:
        return card_valid(p, n);
    case K_IBAN: {
        /* The pattern may run into following capitals: cut at the country length. */
        int want = iban_country_length(p);
        if (!want)
            return false;
        size_t got = 0, i = 0;
        while (i < n && got < (size_t)want) {
            if (p[i] != ' ')
                got++;
            i++;
        }
        if (got != (size_t)want)
            return false;
        if (i < n && p[i] != ' ')
            return false; /* the real string is longer than an IBAN of that country */
        if (!rb_pii_iban_valid(p, i))
            return false;
        *e = *s + i;
        return true;
    }
    case K_SSN:
        return rb_pii_ssn_valid(p, n);
    case K_CN_ID:
        return rb_pii_cn_id_valid(p, n);
    case K_MOBILE:
        if (!collect_digits(p[0] == '+' ? p + 1 : p, p[0] == '+' ? n - 1 : n, d, sizeof d, &nd))
            return false;
        if (nd == 15 && d[0] == '0' && d[1] == '0') /* 0086... */
            return cn_mobile_ok(d + 2, nd - 2);
        return cn_mobile_ok(d, nd);
    case K_LANDLINE:
    case K_NANP:
        return true; /* the pattern encodes the numbering plan */
    case K_E164: {
        size_t digits = 0;
        for (size_t i = 0; i < n; i++)
            digits += is_digit(p[i]);
        return digits >= 8 && digits <= 15;
    }
    case K_EMAIL:
        return true;
    case K_DOB: {
        int idx = pcre2_substring_number_from_name(code, (PCRE2_SPTR) "date");
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        if (idx < 0 || ov[2 * idx] == PCRE2_UNSET)
            return false;
        *s = ov[2 * idx];
        *e = ov[2 * idx + 1];
        /* Plausible calendar date: extract up to three numbers. */
        int nums[3] = {0}, cnt = 0;
        for (size_t i = *s; i < *e && cnt < 3;) {
            if (is_digit(text[i])) {
                int v = 0;
                while (i < *e && is_digit(text[i]))
                    v = v * 10 + (text[i++] - '0');
                nums[cnt++] = v;
            } else {
                i++;
            }
        }
        if (cnt == 3) {
            if (nums[0] >= 1000)
                return date_ok(nums[0], nums[1], nums[2]);
            /* d/m/y or m/d/y: either reading must be a date */
            int y = nums[2] < 100 ? 1900 + nums[2] : nums[2];
            return date_ok(y, nums[0], nums[1]) || date_ok(y, nums[1], nums[0]);
        }
        return cnt == 2; /* "March 4, 1961" */
    }
    case K_MRN:
    case K_ACCOUNT: {
        int idx = pcre2_substring_number_from_name(code, (PCRE2_SPTR) "v");
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        if (idx < 0 || ov[2 * idx] == PCRE2_UNSET)
            return false;
        *s = ov[2 * idx];
        *e = ov[2 * idx + 1];
        return true;
    }
    default:
        return false;
    }
}

static int cmp_prio(const void *a, const void *b)
{
    const struct cand *x = a, *y = b;
    if (x->prio != y->prio)
        return x->prio - y->prio;
    return x->start < y->start ? -1 : x->start > y->start;
}

static int cmp_start(const void *a, const void *b)
{
    const struct rb_redact_span *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

/* Advance one UTF-8 code point. */
static size_t next_cp(const char *text, size_t len, size_t i)
{
    i++;
    while (i < len && ((unsigned char)text[i] & 0xC0) == 0x80)
        i++;
    return i;
}

enum rb_status rb_redact_find(const struct rb_redactor *r, const char *text, size_t len,
                              struct rb_redact_span **spans, size_t *n_spans,
                              struct rb_errmsg *err)
{
    *spans = NULL;
    *n_spans = 0;
    if (!rb_utf8_valid(text, len))
        return rb_errmsg_set(err, RB_ERR_ENCODING, "redaction input is not valid UTF-8");
    struct cands c = {0};
    enum rb_status st = RB_OK;
    for (int k = 0; k < K_COUNT && st == RB_OK; k++) {
        if (!r->code[k])
            continue;
        pcre2_match_data *md = pcre2_match_data_create_from_pattern(r->code[k], NULL);
        if (!md) {
            st = rb_errmsg_set(err, RB_ERR_NOMEM, "out of memory");
            break;
        }
        size_t at = 0;
        while (at <= len) {
            int rc = r->jit[k] ? pcre2_jit_match(r->code[k], (PCRE2_SPTR)text, len, at, 0, md, NULL)
                               : pcre2_match(r->code[k], (PCRE2_SPTR)text, len, at,
                                             PCRE2_NO_UTF_CHECK, md, NULL);
            if (rc == PCRE2_ERROR_NOMATCH)
                break;
            if (rc < 0) {
                PCRE2_UCHAR msg[128];
                pcre2_get_error_message(rc, msg, sizeof msg);
                st = rb_errmsg_set(err, RB_ERR_INTERNAL, "redaction rule %s: %s",
                                   rb_pii_type_name(rules[k].type), (const char *)msg);
                break;
            }
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            size_t s = ov[0], e = ov[1];
            if (validate(k, text, &s, &e, md, r->code[k]) && e > s) {
                if (!push(&c, rules[k].type, priority[k], s, e)) {
                    st = rb_errmsg_set(err, RB_ERR_TOO_LARGE, "too many redaction spans");
                    break;
                }
                at = ov[1] > ov[0] ? ov[1] : next_cp(text, len, ov[0]);
            } else {
                at = next_cp(text, len, ov[0]);
            }
        }
        pcre2_match_data_free(md);
    }
    if (st != RB_OK || c.n == 0) {
        free(c.v);
        return st;
    }
    /* Resolve overlaps by priority, then order by position. */
    qsort(c.v, c.n, sizeof *c.v, cmp_prio);
    struct rb_redact_span *out = rb_malloc_array(c.n, sizeof *out);
    if (!out) {
        free(c.v);
        return rb_errmsg_set(err, RB_ERR_NOMEM, "out of memory");
    }
    size_t n = 0;
    for (size_t i = 0; i < c.n; i++) {
        bool overlaps = false;
        for (size_t j = 0; j < n && !overlaps; j++)
            overlaps = c.v[i].start < out[j].end && out[j].start < c.v[i].end;
        if (!overlaps)
            out[n++] = (struct rb_redact_span){c.v[i].type, c.v[i].start, c.v[i].end};
    }
    free(c.v);
    qsort(out, n, sizeof *out, cmp_start);
    *spans = out;
    *n_spans = n;
    return RB_OK;
}

enum rb_status rb_redact_text(const struct rb_redactor *r, const char *text, size_t len,
                              char **out, size_t *out_len, size_t *n_redacted,
                              struct rb_errmsg *err)
{
    *out = NULL;
    struct rb_redact_span *spans;
    size_t n;
    enum rb_status st = rb_redact_find(r, text, len, &spans, &n, err);
    if (st != RB_OK)
        return st;
    struct rb_buf b;
    rb_buf_init(&b, 0);
    size_t at = 0;
    for (size_t i = 0; i < n && st == RB_OK; i++) {
        st = rb_buf_append(&b, text + at, spans[i].start - at);
        if (st == RB_OK)
            st = rb_buf_printf(&b, "[REDACTED:%s]", rb_pii_type_name(spans[i].type));
        at = spans[i].end;
    }
    if (st == RB_OK)
        st = rb_buf_append(&b, text + at, len - at);
    free(spans);
    if (st != RB_OK) {
        rb_buf_free(&b);
        return rb_errmsg_set(err, st, "cannot build the redacted text");
    }
    if (out_len)
        *out_len = b.len;
    if (n_redacted)
        *n_redacted = n;
    *out = rb_buf_steal(&b);
    if (!*out)
        *out = rb_strdup("");
    return *out ? RB_OK : RB_ERR_NOMEM;
}

char *rb_redact_audit_hook(void *user, const char *text, size_t len)
{
    const struct rb_redactor *r = user;
    size_t clean_len = 0;
    char *clean = rb_utf8_sanitize(text, len, &clean_len);
    if (!clean)
        return NULL;
    if (!r)
        return clean;
    char *out = NULL;
    struct rb_errmsg err;
    enum rb_status st = rb_redact_text(r, clean, clean_len, &out, NULL, NULL, &err);
    free(clean);
    return st == RB_OK ? out : NULL;
}
