//! The pages' words in Chinese (the default) and English.

use creditmesh_domain::Tenant;
use creditmesh_proto::complaints::v1::{ComplaintStatus, Department};
use creditmesh_proto::datapush::v1::{ObjectionDecision, ObjectionGround, RecordStatus};
use creditmesh_proto::disclosure::v1::{AgencyStatus, NoticeKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Zh,
    En,
}

impl Lang {
    /// `en` chooses English; anything else, or nothing, Chinese.
    pub fn parse(s: Option<&str>) -> Self {
        match s {
            Some("en") => Lang::En,
            _ => Lang::Zh,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
        }
    }

    /// The `lang` attribute of the page.
    pub fn html(self) -> &'static str {
        match self {
            Lang::Zh => "zh-Hans",
            Lang::En => "en",
        }
    }

    pub fn text(self) -> &'static Text {
        match self {
            Lang::Zh => &ZH,
            Lang::En => &EN,
        }
    }

    pub fn tenant(self, t: Tenant) -> &'static str {
        match self {
            Lang::Zh => t.chinese_name(),
            Lang::En => t.english_name(),
        }
    }

    pub fn status(self, s: AgencyStatus) -> &'static str {
        use AgencyStatus::*;
        match (self, s) {
            (Lang::Zh, Active) => "正常",
            (Lang::Zh, Deregistering) => "注销办理中",
            (Lang::Zh, Revoked) => "已撤销建档",
            (Lang::Zh, Deregistered) => "已注销",
            (Lang::Zh, Unspecified) => "未知",
            (Lang::En, Active) => "active",
            (Lang::En, Deregistering) => "deregistering",
            (Lang::En, Revoked) => "filing revoked",
            (Lang::En, Deregistered) => "deregistered",
            (Lang::En, Unspecified) => "unknown",
        }
    }

    pub fn notice(self, k: NoticeKind) -> &'static str {
        use NoticeKind::*;
        match (self, k) {
            (Lang::Zh, Published) => "登记建档公示",
            (Lang::Zh, Changed) => "变更公示",
            (Lang::Zh, Revoked) => "撤销建档",
            (Lang::Zh, Deregistered) => "注销",
            (Lang::Zh, Correction) => "更正",
            (Lang::Zh, Deregistering) => "申请注销",
            (Lang::Zh, DeregistrationRefused) => "注销申请未获同意",
            (Lang::Zh, Erasure) => "信息删除",
            (Lang::Zh, SpotCheckDraw) => "抽查抽取",
            (Lang::Zh, Unspecified) => "公告",
            (Lang::En, Published) => "filing published",
            (Lang::En, Changed) => "change published",
            (Lang::En, Revoked) => "filing revoked",
            (Lang::En, Deregistered) => "deregistered",
            (Lang::En, Correction) => "correction",
            (Lang::En, Deregistering) => "deregistration applied for",
            (Lang::En, DeregistrationRefused) => "deregistration refused",
            (Lang::En, Erasure) => "content erased",
            (Lang::En, SpotCheckDraw) => "spot-check draw",
            (Lang::En, Unspecified) => "notice",
        }
    }
}

/// Every fixed word of the pages, one field each.
pub struct Text {
    pub operator: &'static str,
    pub contact_us: &'static str,
    pub skip: &'static str,
    pub other_language: &'static str,
    pub register: &'static str,
    pub search: &'static str,
    pub name: &'static str,
    pub name_hint: &'static str,
    pub uscc: &'static str,
    pub prefecture: &'static str,
    pub any_prefecture: &'static str,
    pub status: &'static str,
    pub any_status: &'static str,
    pub results: &'static str,
    pub none_found: &'static str,
    pub next_page: &'static str,
    pub filed_on: &'static str,
    pub legal_representative: &'static str,
    pub registered_address: &'static str,
    pub business_scope: &'static str,
    pub registered_capital: &'static str,
    pub yuan: &'static str,
    pub staff: &'static str,
    pub holding_authority: &'static str,
    pub reviewing_authority: &'static str,
    pub services_and_fees: &'static str,
    pub service_item: &'static str,
    pub fee: &'static str,
    pub basis: &'static str,
    pub unit: &'static str,
    pub no_fees: &'static str,
    pub notices: &'static str,
    pub in_log: &'static str,
    pub proof: &'static str,
    pub verify_hint: &'static str,
    pub erased: &'static str,
    pub corrects: &'static str,
    pub not_found: &'static str,
    pub bad_request: &'static str,
    /// A field the service refused, on a page whose language the service does not speak.
    pub field_refused: &'static str,
    pub unavailable: &'static str,
    pub too_many: &'static str,
    pub cross_site: &'static str,
    pub form_expired: &'static str,
    pub back: &'static str,
    pub uscc_error: &'static str,
    pub name_error: &'static str,
    pub masked_note: &'static str,
    pub complain: &'static str,
    pub track: &'static str,
    pub access: &'static str,
}

pub const ZH: Text = Text {
    operator: "运营单位：",
    contact_us: "联系方式：",
    skip: "跳到正文",
    other_language: "English",
    register: "信用服务机构名录",
    search: "查询",
    name: "机构名称",
    name_hint: "名称中的任意部分",
    uscc: "统一社会信用代码",
    prefecture: "建档所在地",
    any_prefecture: "全部地州市",
    status: "状态",
    any_status: "全部状态",
    results: "查询结果",
    none_found: "没有符合条件的机构。",
    next_page: "下一页",
    filed_on: "建档日期",
    legal_representative: "法定代表人",
    registered_address: "注册地",
    business_scope: "业务范围",
    registered_capital: "注册资本",
    yuan: "元",
    staff: "专业人员",
    holding_authority: "建档所在地社会信用主管部门",
    reviewing_authority: "审核机关",
    services_and_fees: "服务项目与收费标准",
    service_item: "服务项目",
    fee: "收费标准",
    basis: "依据",
    unit: "计费单位",
    no_fees: "未公示收费项目。",
    notices: "公示记录",
    in_log: "已记入签名日志，序号",
    proof: "下载包含证明",
    verify_hint: "可用 creditmesh verify --key register-log.vkey 文件 离线核验。",
    erased: "该公告内容已依决定删除",
    corrects: "更正序号",
    not_found: "未找到该机构。",
    bad_request: "查询条件有误，请按字段旁的提示修改。",
    field_refused: "此项未通过核验，请核对后重新填写。",
    unavailable: "服务暂时不可用，请稍后再试。",
    too_many: "访问过于频繁，请稍后再试。",
    cross_site: "本站只受理从本站页面提交的表单。",
    form_expired: "表单已失效，请重新打开页面后再提交。",
    back: "返回名录",
    uscc_error: "统一社会信用代码应为18位数字或大写字母，且校验位正确。",
    name_error: "机构名称不超过100个字符。",
    masked_note: "个人信息已按脱敏规则处理。",
    complain: "投诉",
    track: "查询投诉",
    access: "查询本人信用信息",
};

pub const EN: Text = Text {
    operator: "Run by: ",
    contact_us: "Contact: ",
    skip: "Skip to content",
    other_language: "中文",
    register: "Register of credit service agencies",
    search: "Search",
    name: "Agency name",
    name_hint: "any part of the name",
    uscc: "Unified social credit code",
    prefecture: "Filed in",
    any_prefecture: "every prefecture",
    status: "Status",
    any_status: "every status",
    results: "Results",
    none_found: "No agency matches.",
    next_page: "Next page",
    filed_on: "Filed on",
    legal_representative: "Legal representative",
    registered_address: "Registered in",
    business_scope: "Business scope",
    registered_capital: "Registered capital",
    yuan: "yuan",
    staff: "Professional staff",
    holding_authority: "Filing authority",
    reviewing_authority: "Reviewing authority",
    services_and_fees: "Services and fees",
    service_item: "Service",
    fee: "Fee",
    basis: "Basis",
    unit: "Unit",
    no_fees: "No fees published.",
    notices: "Notices",
    in_log: "In the signed log at index",
    proof: "download the inclusion proof",
    verify_hint: "Check it offline with creditmesh verify --key register-log.vkey FILE.",
    erased: "The content of this notice was erased by decision",
    corrects: "corrects index",
    not_found: "No such agency.",
    bad_request: "The search has a problem; see the marked fields.",
    field_refused: "This was not accepted; check it and enter it again.",
    unavailable: "The service is unavailable for the moment; try again shortly.",
    too_many: "Too many requests; try again shortly.",
    cross_site: "This site takes forms sent from its own pages only.",
    form_expired: "This form has expired: open the page again and send it from there.",
    back: "Back to the register",
    uscc_error: "A unified social credit code has 18 digits or capital letters and a valid check character.",
    name_error: "An agency name has at most 100 characters.",
    masked_note: "Personal details are masked by the desensitisation rules.",
    complain: "Complain",
    track: "Track a complaint",
    access: "Your credit records",
};

/// The complaint pages' words.
pub struct ComplaintText {
    pub complain: &'static str,
    pub complain_intro: &'static str,
    pub agency_uscc: &'static str,
    pub agency_name: &'static str,
    pub complainant_name: &'static str,
    pub complainant_contact: &'static str,
    pub contact_hint: &'static str,
    pub place_of_activity: &'static str,
    pub place_hint: &'static str,
    pub place_unknown: &'static str,
    pub subject: &'static str,
    pub description: &'static str,
    pub submit: &'static str,
    pub required: &'static str,
    pub optional: &'static str,
    pub too_long: &'static str,
    pub received: &'static str,
    pub keep_these: &'static str,
    pub tracking_number: &'static str,
    pub access_code: &'static str,
    pub track: &'static str,
    pub track_intro: &'static str,
    pub no_such_complaint: &'static str,
    pub status: &'static str,
    pub deadline: &'static str,
    pub provisional: &'static str,
    pub referred_to: &'static str,
    pub outcome: &'static str,
    pub history: &'static str,
    pub fix_fields: &'static str,
    pub not_filed: &'static str,
    pub evidence: &'static str,
    pub evidence_hint: &'static str,
    pub evidence_kept: &'static str,
    pub file_separator: &'static str,
    pub list_separator: &'static str,
    pub evidence_busy: &'static str,
    pub evidence_slow: &'static str,
    pub evidence_too_large: &'static str,
    pub evidence_empty: &'static str,
    pub evidence_not_document: &'static str,
    pub evidence_pending: &'static str,
    pub evidence_failed: &'static str,
    pub evidence_too_many: &'static str,
    pub evidence_not_sent: &'static str,
    pub evidence_missing: &'static str,
    pub evidence_cut_off: &'static str,
}

impl Lang {
    pub fn complaints(self) -> &'static ComplaintText {
        match self {
            Lang::Zh => &COMPLAINTS_ZH,
            Lang::En => &COMPLAINTS_EN,
        }
    }

    pub fn complaint_status(self, s: ComplaintStatus) -> &'static str {
        use ComplaintStatus::*;
        match (self, s) {
            (Lang::Zh, Received) => "已收到",
            (Lang::Zh, Accepted) => "已受理",
            (Lang::Zh, Resolved) => "已办结",
            (Lang::Zh, Referred) => "已转交有关部门",
            (Lang::Zh, Unspecified) => "未知",
            (Lang::En, Received) => "received",
            (Lang::En, Accepted) => "accepted",
            (Lang::En, Resolved) => "resolved",
            (Lang::En, Referred) => "referred to a department",
            (Lang::En, Unspecified) => "unknown",
        }
    }

    /// A status as the complaint's history names it (`received`, `accepted`, ...).
    pub fn complaint_status_named(self, name: &str) -> String {
        let s = match name {
            "received" => ComplaintStatus::Received,
            "accepted" => ComplaintStatus::Accepted,
            "resolved" => ComplaintStatus::Resolved,
            "referred" => ComplaintStatus::Referred,
            other => return other.to_owned(),
        };
        self.complaint_status(s).to_owned()
    }

    pub fn department(self, d: Department) -> &'static str {
        use Department::*;
        match (self, d) {
            (Lang::Zh, Cyberspace) => "网信部门",
            (Lang::Zh, MarketRegulation) => "市场监督管理部门",
            (Lang::Zh, DigitalDevelopment) => "数字化发展部门",
            (Lang::Zh, CivilAffairs) => "民政部门",
            (Lang::Zh, HumanResourcesSocialSecurity) => "人力资源和社会保障部门",
            (Lang::Zh, PublicSecurity) => "公安机关",
            (Lang::Zh, PbocBranch) => "中国人民银行分支机构",
            (Lang::Zh, Other) => "有关部门",
            (Lang::Zh, Unspecified) => "",
            (Lang::En, Cyberspace) => "cyberspace administration",
            (Lang::En, MarketRegulation) => "market regulation",
            (Lang::En, DigitalDevelopment) => "digital development",
            (Lang::En, CivilAffairs) => "civil affairs",
            (Lang::En, HumanResourcesSocialSecurity) => "human resources and social security",
            (Lang::En, PublicSecurity) => "public security",
            (Lang::En, Other) => "another department",
            (Lang::En, PbocBranch) => "People's Bank of China branch",
            (Lang::En, Unspecified) => "",
        }
    }
}

pub const COMPLAINTS_ZH: ComplaintText = ComplaintText {
    complain: "投诉信用服务机构",
    complain_intro: "投诉将送交该机构建档所在地的社会信用主管部门处理，您会收到查询编号和查询码。",
    agency_uscc: "被投诉机构统一社会信用代码",
    agency_name: "被投诉机构名称",
    complainant_name: "您的姓名",
    complainant_contact: "联系方式",
    contact_hint: "可不填，匿名举报凭查询号和查询码查询办理情况；留手机号码或电子邮箱的，告知办理情况；座机号码请带区号",
    place_of_activity: "发生地",
    place_hint: "可不填：所投诉的行为发生在哪个地（州、市）或县（市、区），由当地社会信用主管部门办理；不填的，由该机构登记建档的主管部门办理，未建档的由自治区社会信用主管部门办理",
    place_unknown: "不确定",
    subject: "投诉事项",
    description: "事实经过",
    submit: "提交投诉",
    required: "必填",
    optional: "选填",
    too_long: "内容过长",
    received: "投诉已收到",
    keep_these: "请保存查询编号和查询码，查询码只显示这一次。",
    tracking_number: "查询编号",
    access_code: "查询码",
    track: "查询投诉办理情况",
    track_intro: "输入提交投诉时取得的查询编号和查询码。",
    no_such_complaint: "查询编号或查询码不正确。",
    status: "办理状态",
    deadline: "办理期限",
    provisional: "（节假日安排未公布，期限可能调整）",
    referred_to: "已转交",
    outcome: "办理结果",
    history: "办理经过",
    fix_fields: "请按字段旁的提示修改后重新提交，尚未保存任何内容。",
    not_filed: "请按字段旁的提示修改后重新提交，投诉尚未提交。",
    evidence: "证据材料",
    evidence_hint: "PDF、OFD、JPEG 或 PNG 文件，每个不超过 10 MiB，最多 20 个",
    evidence_kept: "已上传的材料（取消勾选即不附）",
    file_separator: "：",
    list_separator: "；",
    evidence_busy: "当前上传的人较多，请稍后重新选择此文件",
    evidence_slow: "上传时间过长，请重新选择此文件",
    evidence_too_large: "文件超过 10 MiB",
    evidence_empty: "文件是空的",
    evidence_not_document: "不是 PDF、OFD、JPEG 或 PNG 文件",
    evidence_pending: "您已上传 20 个尚未随投诉提交的文件，请先提交投诉，或一天后再上传",
    evidence_failed: "未能接收，请重新选择此文件",
    evidence_too_many: "最多附 20 个文件",
    evidence_not_sent: "文件尚未上传：请先改正上面标出的字段，再重新选择文件",
    evidence_missing: "此前上传的文件已找不到，请重新选择",
    evidence_cut_off: "上传未完成（连接中断或文件总量过大），请重新选择文件",
};

pub const COMPLAINTS_EN: ComplaintText = ComplaintText {
    complain: "Complain about a credit service agency",
    complain_intro: "The complaint goes to the authority holding the agency's filing; you receive a tracking number and an access code.",
    agency_uscc: "The agency's unified social credit code",
    agency_name: "The agency's name",
    complainant_name: "Your name",
    complainant_contact: "Contact",
    contact_hint: "optional: an anonymous report is followed with its tracking number and access code; a mobile number or e-mail address is told how it is handled; give a landline with its area code",
    place_of_activity: "Where it happened",
    place_hint: "optional: the prefecture or county where the conduct took place, whose authority handles it; left open, the authority holding the agency's filing does, or the region's for an agency that has not filed",
    place_unknown: "not sure",
    subject: "What the complaint is about",
    description: "What happened",
    submit: "Submit the complaint",
    required: "required",
    optional: "optional",
    too_long: "is too long",
    received: "Complaint received",
    keep_these: "Keep the tracking number and the access code: the code is shown only this once.",
    tracking_number: "Tracking number",
    access_code: "Access code",
    track: "Track a complaint",
    track_intro: "Enter the tracking number and access code you received when you complained.",
    no_such_complaint: "The tracking number or access code is not right.",
    status: "Status",
    deadline: "Handling deadline",
    provisional: " (holidays not yet announced; the deadline may move)",
    referred_to: "Referred to",
    outcome: "Outcome",
    history: "History",
    fix_fields: "Correct the marked fields and submit again; nothing has been stored yet.",
    not_filed: "Correct the marked fields and submit again; the complaint has not been filed yet.",
    evidence: "Evidence",
    evidence_hint: "PDF, OFD, JPEG or PNG files, up to 10 MiB each, at most 20",
    evidence_kept: "Files already uploaded (untick to leave one out)",
    file_separator: ": ",
    list_separator: "; ",
    evidence_busy: "many files are arriving just now; choose this file again in a moment",
    evidence_slow: "took too long to arrive; choose it again",
    evidence_too_large: "is larger than 10 MiB",
    evidence_empty: "is empty",
    evidence_not_document: "is not a PDF, OFD, JPEG or PNG file",
    evidence_pending: "you have uploaded 20 files that no complaint names yet; submit the complaint first, or upload again after a day",
    evidence_failed: "could not be received; choose it again",
    evidence_too_many: "at most 20 files",
    evidence_not_sent: "the files were not uploaded: correct the fields marked above, then choose the files again",
    evidence_missing: "a file uploaded earlier is no longer held; choose it again",
    evidence_cut_off: "the upload did not finish (the connection broke or the files together were too large); choose the files again",
};

/// The subject access pages' words (Art. 21, 22).
pub struct AccessText {
    pub title: &'static str,
    pub intro: &'static str,
    pub identifier: &'static str,
    pub identifier_hint: &'static str,
    pub access_code: &'static str,
    pub code_hint: &'static str,
    pub show: &'static str,
    pub wrong: &'static str,
    pub records: &'static str,
    pub no_records: &'static str,
    pub source: &'static str,
    pub provider: &'static str,
    pub legal_basis: &'static str,
    pub agency_use: &'static str,
    pub collected_on: &'static str,
    pub kept_until: &'static str,
    pub received_at: &'static str,
    pub version: &'static str,
    pub content: &'static str,
    pub history: &'static str,
    pub uses: &'static str,
    pub no_uses: &'static str,
    pub used_at: &'static str,
    pub used_by: &'static str,
    pub purpose: &'static str,
    pub objections: &'static str,
    pub filed_at: &'static str,
    pub ground: &'static str,
    pub choose_ground: &'static str,
    pub deadline: &'static str,
    pub decision: &'static str,
    pub undecided: &'static str,
    pub overdue: &'static str,
    pub reasons: &'static str,
    pub kept_reasons: &'static str,
    pub subject_statement: &'static str,
    pub object: &'static str,
    pub statement: &'static str,
    pub statement_hint: &'static str,
    pub contact: &'static str,
    pub contact_hint: &'static str,
    pub submit: &'static str,
    pub received: &'static str,
    pub not_markable: &'static str,
    pub add_statement: &'static str,
    pub add_statement_hint: &'static str,
    pub attach_statement: &'static str,
    pub statement_added: &'static str,
    pub statement_refused: &'static str,
    pub ground_error: &'static str,
    pub next_page: &'static str,
    pub measure: &'static str,
    /// Not stated, correct, delete, another measure (described in the statement).
    pub measures: [&'static str; 4],
    pub materials: &'static str,
    pub materials_hint: &'static str,
    pub materials_too_many: &'static str,
    pub material_too_large: &'static str,
    pub material_refused: &'static str,
    pub materials_again: &'static str,
}

pub const ACCESS_ZH: AccessText = AccessText {
    title: "查询本人信用信息",
    intro: "凭监管部门信用服务窗口发放的查询码，查看信用服务机构报送的关于您的信息、来源、变更经过和使用情况；认为有误的，可以提出异议。",
    identifier: "身份证号码或统一社会信用代码",
    identifier_hint: "与申请查询码时提供的一致",
    access_code: "查询码",
    code_hint: "由监管部门信用服务窗口发放，有效期内可多次使用",
    show: "查看",
    wrong: "证件号码或查询码不正确，或查询码已过期。",
    records: "关于您的信息",
    no_records: "没有信用服务机构报送的关于您的信息。",
    source: "报送机构",
    provider: "信息来源",
    legal_basis: "依据",
    agency_use: "报送机构自行记录",
    collected_on: "采集日期",
    kept_until: "平台保存至",
    received_at: "报送时间",
    version: "版本",
    content: "内容",
    history: "变更经过",
    uses: "使用情况",
    no_uses: "尚无查询使用记录。",
    used_at: "时间",
    used_by: "使用者",
    purpose: "用途",
    objections: "异议",
    filed_at: "提出时间",
    ground: "异议理由",
    choose_ground: "请选择",
    deadline: "处理期限",
    decision: "处理决定",
    undecided: "处理中",
    overdue: "已逾期",
    reasons: "理由",
    kept_reasons: "机构保留该信息的理由",
    subject_statement: "本人声明",
    object: "对这条信息提出异议",
    statement: "异议说明",
    statement_hint: "哪里有误，以及能证明的材料（如还款凭证编号）",
    contact: "联系方式",
    contact_hint: "电话或电子邮箱，用于告知处理结果",
    submit: "提交异议",
    received: "异议已受理，该信息已作异议标注。信用服务机构应在此日期前作出决定：",
    not_markable: "这条信息已有异议在处理，或已删除，暂不能再提出异议。",
    add_statement: "对保留决定附上本人声明",
    add_statement_hint: "说明您不同意的理由；声明与该信息一并保存、一并提供",
    attach_statement: "提交声明",
    statement_added: "您的声明已附在该信息上，今后与该信息一并提供。",
    statement_refused: "这项异议的决定不是保留，或已附有声明，不能再附声明。",
    ground_error: "请选择异议理由。",
    next_page: "下一页",
    measure: "要求采取的措施",
    measures: [
        "不指定，由机构判断",
        "更正",
        "删除",
        "其他必要措施（请在说明中写明）",
    ],
    materials: "证明材料",
    materials_hint: "PDF、OFD、JPEG 或 PNG，最多 5 个文件，每个不超过 5 MB、合计不超过 10 MB",
    materials_too_many: "最多提交 5 个证明材料。",
    material_too_large: "超过 5 MB，请压缩后重新选择：",
    material_refused: "未能接收，请确认是 PDF、OFD、JPEG 或 PNG 文件：",
    materials_again: "表单有误，所选文件未提交；改正后请重新选择证明材料。",
};

pub const ACCESS_EN: AccessText = AccessText {
    title: "Your credit records",
    intro: "With the access code a regulator's service desk gave you, see what credit service agencies reported about you, where it came from, how it changed and who used it; object to what is wrong.",
    identifier: "Resident identity number or unified social credit code",
    identifier_hint: "the one you gave when the code was issued",
    access_code: "Access code",
    code_hint: "issued by a regulator's service desk; usable until it expires",
    show: "Show",
    wrong: "The identifier or the access code is not right, or the code has expired.",
    records: "Records about you",
    no_records: "No agency has reported anything about you.",
    source: "Reported by",
    provider: "Source",
    legal_basis: "Legal basis",
    agency_use: "recorded by the reporting agency",
    collected_on: "Collected on",
    kept_until: "Kept by the platform until",
    received_at: "Received",
    version: "Version",
    content: "Content",
    history: "History",
    uses: "Uses",
    no_uses: "Nobody has read it yet.",
    used_at: "When",
    used_by: "By",
    purpose: "Purpose",
    objections: "Objections",
    filed_at: "Filed",
    ground: "Ground",
    choose_ground: "choose one",
    deadline: "Decision due by",
    decision: "Decision",
    undecided: "pending",
    overdue: "overdue",
    reasons: "Reasons",
    kept_reasons: "The agency's reasons for keeping it",
    subject_statement: "Your statement",
    object: "Object to this record",
    statement: "What is wrong",
    statement_hint: "what is wrong, and what shows it (a repayment receipt's number, say)",
    contact: "Contact",
    contact_hint: "a phone number or e-mail address, to tell you the decision",
    submit: "File the objection",
    received: "The objection was received and the record is marked as under objection. The agency decides by",
    not_markable: "This record already has an objection being decided, or was deleted; it cannot be objected to now.",
    add_statement: "Attach your statement to the decision to keep",
    add_statement_hint: "say why you disagree; the statement is kept and provided with the record",
    attach_statement: "Attach the statement",
    statement_added: "Your statement is attached to the record and will be provided with it.",
    statement_refused: "The decision on this objection is not to keep the record, or a statement is attached already; no statement can be attached.",
    ground_error: "Choose a ground.",
    next_page: "Next page",
    measure: "What you ask the agency to do",
    measures: [
        "Not stated: the agency decides",
        "Correct it",
        "Delete it",
        "Another measure (describe it in the statement)",
    ],
    materials: "Supporting materials",
    materials_hint: "PDF, OFD, JPEG or PNG; at most 5 files, each at most 5 MB and 10 MB together",
    materials_too_many: "At most 5 supporting materials.",
    material_too_large: "Over 5 MB; make it smaller and choose it again:",
    material_refused: "Not accepted; it must be a PDF, OFD, JPEG or PNG file:",
    materials_again: "The form had errors, so the files were not sent; choose them again once it is corrected.",
};

impl Lang {
    pub fn access(self) -> &'static AccessText {
        match self {
            Lang::Zh => &ACCESS_ZH,
            Lang::En => &ACCESS_EN,
        }
    }

    pub fn record_status(self, s: RecordStatus) -> &'static str {
        use RecordStatus::*;
        match (self, s) {
            (Lang::Zh, Active) => "有效",
            (Lang::Zh, UnderObjection) => "异议处理中",
            (Lang::Zh, Deleted) => "已删除",
            (Lang::Zh, Unspecified) => "未知",
            (Lang::En, Active) => "in effect",
            (Lang::En, UnderObjection) => "under objection",
            (Lang::En, Deleted) => "deleted",
            (Lang::En, Unspecified) => "unknown",
        }
    }

    /// A version's change as the record's history names it (`pushed`, `corrected`, ...).
    pub fn record_change(self, name: &str) -> String {
        let s = match (self, name) {
            (Lang::Zh, "pushed") => "报送",
            (Lang::Zh, "updated") => "机构更新",
            (Lang::Zh, "corrected") => "因异议更正",
            (Lang::Zh, "deleted") => "因异议删除",
            (Lang::En, "pushed") => "reported",
            (Lang::En, "updated") => "updated by the agency",
            (Lang::En, "corrected") => "corrected on objection",
            (Lang::En, "deleted") => "deleted on objection",
            (_, other) => other,
        };
        s.to_owned()
    }

    pub fn ground(self, g: ObjectionGround) -> &'static str {
        use ObjectionGround::*;
        match (self, g) {
            (Lang::Zh, Error) => "信息错误",
            (Lang::Zh, Omission) => "信息遗漏",
            (Lang::Zh, ImproperEvaluation) => "评价不当",
            (Lang::Zh, TradeSecret) => "侵犯商业秘密",
            (Lang::Zh, Privacy) => "侵犯个人隐私",
            (Lang::Zh, Unspecified) => "",
            (Lang::En, Error) => "the information is wrong",
            (Lang::En, Omission) => "something is missing",
            (Lang::En, ImproperEvaluation) => "the evaluation is improper",
            (Lang::En, TradeSecret) => "it discloses a trade secret",
            (Lang::En, Privacy) => "it infringes privacy",
            (Lang::En, Unspecified) => "",
        }
    }

    pub fn decision(self, d: ObjectionDecision) -> &'static str {
        use ObjectionDecision::*;
        match (self, d) {
            (Lang::Zh, Correct) => "更正",
            (Lang::Zh, Delete) => "删除",
            (Lang::Zh, Keep) => "保留",
            (Lang::Zh, Unspecified) => "",
            (Lang::En, Correct) => "corrected",
            (Lang::En, Delete) => "deleted",
            (Lang::En, Keep) => "kept",
            (Lang::En, Unspecified) => "",
        }
    }
}

impl Lang {
    /// Who read a record, from the SPIFFE id the platform logged: the kind of reader and its
    /// prefecture (an agency by its code); anything else as logged.
    pub fn reader(self, spiffe_id: &str) -> String {
        let path = spiffe_id
            .strip_prefix("spiffe://")
            .and_then(|rest| rest.split_once('/'))
            .map_or("", |(_, path)| path);
        let mut parts = path.split('/');
        let (kind, tenant) = (
            parts.next(),
            parts.next().and_then(|t| Tenant::parse(t).ok()),
        );
        let subject = parts.next().unwrap_or_default();
        let Some(tenant) = tenant else {
            return spiffe_id.to_owned();
        };
        let place = self.tenant(tenant);
        match (self, kind) {
            (Lang::Zh, Some("regulator")) => format!("{place}信用主管部门"),
            (Lang::Zh, Some("department")) => format!("{place}有关部门（{subject}）"),
            (Lang::Zh, Some("agency")) => format!("信用服务机构 {subject}"),
            (Lang::En, Some("regulator")) => format!("credit regulator of {place}"),
            (Lang::En, Some("department")) => format!("{subject} department of {place}"),
            (Lang::En, Some("agency")) => format!("credit service agency {subject}"),
            _ => spiffe_id.to_owned(),
        }
    }
}

pub fn lang_of(uri: &http::Uri) -> Lang {
    let lang = form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "lang")
        .map(|(_, v)| v.into_owned());
    Lang::parse(lang.as_deref())
}
