// UI strings, English and Chinese. Keys are used by data-i18n attributes and t().
export const strings = {
  en: {
    skip: 'Skip to content', language: 'Language', logout: 'Log out', close: 'Close',
    login_title: 'Sign in to ragbox', username: 'User name', password: 'Password', login: 'Sign in',
    login_failed: 'Wrong user name or password.', throttled: 'Too many failed attempts. Try again in {s} s.',
    nav_ask: 'Ask', nav_search: 'Search', nav_documents: 'Documents', nav_history: 'History',
    nav_batch: 'Batch jobs', nav_admin: 'Administration', nav_keys: 'API keys', nav_audit: 'Audit',
    collections: 'Collections', all_collections: 'All my collections', query: 'Search terms', search: 'Search',
    no_hits: 'Nothing found.', open_passage: 'Open passage', page: 'page', pages: 'pages',
    question: 'Your question', ask: 'Ask', answer: 'Answer', sources: 'Sources', stop: 'Stop',
    ask_unavailable: 'Question answering is not available on this server yet (no generation model loaded).',
    documents: 'Documents', source: 'Source', state: 'State', chunks: 'Passages', size: 'Size',
    updated: 'Updated', delete: 'Delete', reingest: 'Re-ingest', upload: 'Upload', choose_file: 'Document file',
    upload_unavailable: 'Uploading is not available on this server yet (no ingest service).',
    history: 'My question history', export: 'Export', delete_all: 'Delete all', when: 'When',
    confirm_delete: 'Delete this? This cannot be undone.', empty: 'Nothing here yet.',
    batch_unavailable: 'Batch jobs are not available on this server yet.',
    jobs: 'My batch jobs', job_file: 'Question file (CSV, XLSX or JSON Lines with a "question" column)',
    job_mode: 'Answers', job_mode_auto: 'Generated when a model is loaded, else extracted',
    job_mode_extractive: 'Extracted sentences only', job_submit: 'Start the job',
    job_help: 'Every question of the file is answered with its sources; download the answers as a spreadsheet when the job is done.',
    job_need: 'Choose a question file and at least one collection.', job_types: 'Use a .csv, .xlsx or .jsonl file.',
    job_progress: 'Progress', job_counts: 'Answered / refused / failed', cancel: 'Cancel',
    job_queued: 'queued', job_running: 'running', job_done: 'done', job_failed: 'failed', job_cancelled: 'cancelled',
    users: 'Users', groups: 'Groups', grants: 'Grants', api_keys: 'API keys', name: 'Name', role: 'Role',
    create: 'Create', members: 'Members', add_member: 'Add member', user: 'User', group: 'Group',
    kind: 'Kind', collection: 'Collection', read: 'Read', write: 'Write', save: 'Save', disabled: 'Disabled',
    disable: 'Disable', enable: 'Enable', scopes: 'Scopes', revoke: 'Revoke', revoked: 'revoked', active: 'active',
    key_once: 'Copy this key now. It will not be shown again:', new_collection: 'New collection',
    audit: 'Audit trail', from: 'From', to: 'To', action: 'Action', outcome: 'Outcome', text: 'Contains',
    find: 'Find', verify: 'Verify the chain', verify_ok: 'The audit chain is intact: {n} records.',
    verify_bad: 'The audit chain is broken: {p}', export_jsonl: 'Export JSONL', export_csv: 'Export CSV',
    audit_unavailable: 'The audit trail is not available on this server yet.', records: 'records',
    saved: 'Saved.', deleted: 'Deleted.', failed: 'Failed: {m}', time: 'Time',
  },
  zh: {
    skip: '跳到内容', language: '语言', logout: '退出', close: '关闭',
    login_title: '登录 ragbox', username: '用户名', password: '密码', login: '登录',
    login_failed: '用户名或密码错误。', throttled: '失败次数过多，请 {s} 秒后再试。',
    nav_ask: '提问', nav_search: '检索', nav_documents: '文档', nav_history: '历史',
    nav_batch: '批量任务', nav_admin: '管理', nav_keys: 'API 密钥', nav_audit: '审计',
    collections: '文档集', all_collections: '我的全部文档集', query: '检索词', search: '检索',
    no_hits: '没有找到结果。', open_passage: '打开段落', page: '页', pages: '页',
    question: '您的问题', ask: '提问', answer: '回答', sources: '来源', stop: '停止',
    ask_unavailable: '本服务器尚未提供问答功能（未加载生成模型）。',
    documents: '文档', source: '来源', state: '状态', chunks: '段落数', size: '大小',
    updated: '更新时间', delete: '删除', reingest: '重新导入', upload: '上传', choose_file: '文档文件',
    upload_unavailable: '本服务器尚未提供上传功能（无导入服务）。',
    history: '我的提问历史', export: '导出', delete_all: '全部删除', when: '时间',
    confirm_delete: '确定删除？此操作不可撤销。', empty: '暂无内容。',
    batch_unavailable: '本服务器尚未提供批量任务功能。',
    jobs: '我的批量任务', job_file: '问题文件（CSV、XLSX 或 JSON Lines，含 "question" 列）',
    job_mode: '回答方式', job_mode_auto: '已加载模型时生成，否则摘录', job_mode_extractive: '仅摘录原文句子',
    job_submit: '开始任务', job_help: '文件中的每个问题都会附带出处作答；任务完成后可将答案下载为表格。',
    job_need: '请选择问题文件和至少一个知识库。', job_types: '请使用 .csv、.xlsx 或 .jsonl 文件。',
    job_progress: '进度', job_counts: '已答 / 拒答 / 失败', cancel: '取消',
    job_queued: '排队中', job_running: '运行中', job_done: '已完成', job_failed: '失败', job_cancelled: '已取消',
    users: '用户', groups: '用户组', grants: '授权', api_keys: 'API 密钥', name: '名称', role: '角色',
    create: '创建', members: '成员', add_member: '添加成员', user: '用户', group: '用户组',
    kind: '类型', collection: '文档集', read: '读', write: '写', save: '保存', disabled: '已停用',
    disable: '停用', enable: '启用', scopes: '权限范围', revoke: '吊销', revoked: '已吊销', active: '有效',
    key_once: '请立即复制此密钥，它不会再次显示：', new_collection: '新建文档集',
    audit: '审计记录', from: '起', to: '止', action: '操作', outcome: '结果', text: '包含',
    find: '查询', verify: '校验哈希链', verify_ok: '审计链完整：共 {n} 条记录。',
    verify_bad: '审计链已损坏：{p}', export_jsonl: '导出 JSONL', export_csv: '导出 CSV',
    audit_unavailable: '本服务器尚未提供审计功能。', records: '条记录',
    saved: '已保存。', deleted: '已删除。', failed: '失败：{m}', time: '时间',
  },
};

let current = 'en';

export function setLanguage(lang) {
  current = strings[lang] ? lang : 'en';
  document.documentElement.lang = current === 'zh' ? 'zh-CN' : 'en';
  for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
}

export function language() { return current; }

export function t(key, vars) {
  let s = (strings[current] && strings[current][key]) || strings.en[key] || key;
  if (vars) for (const [k, v] of Object.entries(vars)) s = s.replace(`{${k}}`, String(v));
  return s;
}
