package sentiment

import (
	"regexp"
	"strings"
)

// chinesePatterns are the shapes Chinese support complaints take, many with
// no sentiment word at all ("退款到现在还没到账", "没人回复", "扣了两次").
// Each is one feature whose weight the model learns; the names appear in an
// alert's reasons. They run on normalized text (normalizeChinese): digits
// are 0, punctuation half-width.
var chinesePatterns = []struct {
	name string
	// anchors: the pattern can only match text holding one of them, so the
	// regexp (the costly part) is skipped otherwise. re nil: an anchor is
	// the match.
	anchors []string
	re      *regexp.Regexp
}{
	{"still not done (还没到账/还没收到)", []string{"还没", "还未", "还不", "仍然没", "仍未", "都没", "也没"},
		regexp.MustCompile(`(还|仍然?|都|也)(没有?|未|不)[^,.!?]{0,4}(到账|收到|发货|退|回复|处理|解决|开通|到|发|审核|好|动静|消息|人|用)`)},
	{"keeps failing (一直/老是...)", []string{"一直", "始终", "总是", "老是", "每次", "又"},
		regexp.MustCompile(`(一直|始终|总是|老是|每次|又)[^,.!?]{0,6}(没|不|无法|打不开|登不上|卡|掉线|闪退|提示|失败|报错|错|崩|扣|转圈|加载)`)},
	{"nobody responds (没人回复)", []string{"没人", "没有人", "无人", "没回", "不回", "不理", "没消息", "没有回复", "没动静", "联系不上"}, nil},
	{"cannot use it (打不开/登不上)", []string{"打不开", "登不上", "登不进", "进不去", "看不了", "用不了", "播放不了", "下载不了", "付不了", "上不了", "听不懂", "没法", "无法"},
		regexp.MustCompile(`打不开|登不上|登不进|进不去|看不了|用不了|播放不了|下载不了|付不了|上不了|听不懂|没法(看|用|上|学|登|听)|无法(登|播放|打开|使用|下载|支付|付款|提交|观看|访问|上课)`)},
	{"refund refused or late (退款...没)", []string{"退款", "退钱", "退货", "退费", "退回"},
		regexp.MustCompile(`(退款|退钱|退货|退费|退回)[^,.!?]{0,8}(没|不给|未|驳回|拒绝|失败|还在|一直|复杂)|(不给|不能|拒绝)(我)?(退款|退钱|退)`)},
	{"demands a refund (我要退款)", []string{"我要", "要求", "给我", "马上", "直接", "立刻"},
		regexp.MustCompile(`(我要|要求|给我|马上|直接|立刻)(全额)?(退款|退钱|退费|退货|处理)`)},
	{"threatens to complain (投诉/12315)", []string{"投诉", "举报", "维权", "消费者协会", "消协", "黑猫", "曝光", "起诉", "律师", "报警"}, nil},
	{"feels cheated (骗/坑)", []string{"骗", "忽悠", "坑", "宰", "套路", "虚假宣传", "欺诈", "跑路", "盗版", "假的"}, nil},
	{"charged wrongly (扣了两次)", []string{"扣", "多收", "收费"},
		regexp.MustCompile(`扣[^,.!?]{0,6}(两次|两笔|重复|多扣|又|一次钱)|(多扣|重复扣|多收|乱收费|另外收费|偷偷扣)|(又|重复|多)扣`)},
	{"without consent (没经过我同意)", []string{"同意", "授权", "允许", "通知", "提醒"},
		regexp.MustCompile(`(没有?|未|不)(经过|经)?(我的?)?(同意|授权|允许)|(没有?|未|不)(任何)?(提前)?(通知|提醒)`)},
	{"asked again and again (第三次)", []string{"次", "遍", "几回"},
		regexp.MustCompile(`第[二三四五六七八九十几0]+次|[二三四五两几好多0]+(次|遍)了|多少次|好几次|无数次|(三|四|五|几|好几|0+)(次|遍)都`)},
	{"waited long (到现在/两周了)", []string{"到现在", "至今", "这么久", "了", "半个月", "一直等"},
		regexp.MustCompile(`到现在|至今|这么久|多久了|[一二两三四五六七八九十几0半]+(天|周|个?星期|个?礼拜|个月|小时)(了|都|还)|等了[^,.!?]{0,6}(还|也|都)`)},
	{"broken promise (说好的...)", []string{"说好", "承诺", "答应", "明明", "宣传"},
		regexp.MustCompile(`(说好|承诺|答应|明明|宣传)[^!?]{0,14}(结果|却|没|不|还|就|变|空话)`)},
	{"intensified bad (太差/很失望)", []string{"太", "很", "非常", "真", "特别", "极", "超", "好"},
		regexp.MustCompile(`(太|很|非常|真|特别|极其|超级?|好)(差|慢|坑|烂|失望|糟糕|恶心|过分|离谱|不负责|贵|麻烦|复杂|寒心|生气|着急|担心)`)},
	{"bad word (差劲/垃圾)", []string{"差劲", "垃圾", "破", "烂", "恶心", "失望", "后悔", "无语", "离谱", "敷衍", "气死", "烦死", "急死", "服了", "寒心", "糟糕", "活该", "头疼", "不满", "差评", "不负责", "踢皮球", "形同虚设", "白花"}, nil},
	{"never again (再也不)", []string{"再也不", "不会再", "最后一次", "不想再", "别再"}, nil},
	{"app broken (闪退/卡)", []string{"闪退", "崩溃", "卡顿", "卡得", "黑屏", "白屏", "掉线", "乱码", "报错", "bug", "失效", "异常", "加载失败", "转圈"}, nil},
	{"goods damaged or lost (破损/丢了)", []string{"缺页", "破损", "损坏", "坏的", "坏了", "压坏", "错发", "发错", "漏发", "少发", "丢了", "丢失", "寄丢", "洒了", "印反", "写错", "开错", "送错"}, nil},
	{"why still / why me (为什么还...)", []string{"为什么", "凭什么", "怎么又", "怎么还", "到底"},
		regexp.MustCompile(`(为什么|凭什么|怎么|到底)(还|又|要|就|会|不|没|让)|凭什么|到底`)},
	{"demands accountability (谁负责/给个说法)", []string{"谁负责", "说法", "什么意思", "算什么", "合理吗", "这叫", "就这", "好意思", "认真对待", "不管", "不负责"}, nil},
	{"not as described (不符/不一样)", []string{"不符", "不一致", "不一样", "对不上", "货不对板", "另一个人", "只有一半", "缩短", "下架", "清零", "被封", "收回"}, nil},
}

// chineseRequest marks a plain question ("请问怎么下载课件?"): service
// vocabulary in a question is not a complaint.
var chineseRequestAnchors = []string{"请问", "想问", "咨询", "怎么", "如何", "能不能", "可不可以", "可以", "是否", "有没有", "哪里", "在哪", "多久", "吗", "呢", "?", "麻烦"}

func chineseRequest(norm string) bool {
	t := strings.TrimSpace(norm)
	return strings.HasSuffix(t, "?") || strings.HasSuffix(t, "吗") || strings.HasPrefix(t, "请问") ||
		strings.HasPrefix(t, "你好") || strings.HasPrefix(t, "您好") || containsAny(t, chineseRequestAnchors[:6])
}

// chineseDense is the number of dense Chinese features: bias, one per
// pattern, question, exclamation.
var chineseDense = 1 + len(chinesePatterns) + 2

func chineseDenseNames() []string {
	names := []string{"bias"}
	for _, p := range chinesePatterns {
		names = append(names, p.name)
	}
	return append(names, "plain question", "exclamation")
}

func (f *features) chinesePatternFeatures(norm string) {
	f.dense[0] = 1
	for i, p := range chinesePatterns {
		if containsAny(norm, p.anchors) && (p.re == nil || p.re.MatchString(norm)) {
			f.dense[1+i] = 1
		}
	}
	if chineseRequest(norm) {
		f.dense[1+len(chinesePatterns)] = 1
	}
	if strings.Contains(norm, "!") {
		f.dense[2+len(chinesePatterns)] = 1
	}
}
