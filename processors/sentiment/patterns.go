package sentiment

import (
	"regexp"
	"strings"
)

// complaintPatterns are the shapes support complaints take that carry no
// sentiment word at all ("nobody called back", "still no reply", "locked
// out", "charged without my permission"). Valences are on VADER's raw
// scale; each pattern counts once per message. They describe the register
// of support chats, not any particular message.
var complaintPatterns = []struct {
	// anchors: the regexp can only match text containing one of them, so
	// it is skipped otherwise (regexps are the scorer's main cost).
	anchors []string
	re      *regexp.Regexp
	value   float64
}{
	// Nobody responds.
	{[]string{"nobody", "no one", "noone", "not a single", "never"}, regexp.MustCompile(`\b(nobody|no one|noone|not a single|never)\b[^.!?]{0,25}\b(answer|repl|respond|call|help|care|fix|show|got back|get back|came|come|arriv|receiv)`), -2.4},
	{[]string{"no ", "zero", "without"}, regexp.MustCompile(`\b(no|zero|without (a|any))\s+(reply|replies|response|answer|answers|help|update|callback)\b`), -2.2},
	// Still broken / still waiting.
	{[]string{"still"}, regexp.MustCompile(`\bstill\b[^.!?]{0,20}\b(no|not|nothing|can't|cannot|can not|won't|hasn't|haven't|isn't|doesn't|didn't|waiting|locked|broken|missing|charg|wrong|see)`), -2.2},
	// I cannot do what I paid for.
	{[]string{"can't", "cannot", "can not", "unable", "couldn't", "won't let", "not able"}, regexp.MustCompile(`\b(can't|cannot|can not|unable to|couldn't|won't let me|not able to)\s+(even\s+)?(access|log ?in|login|sign in|download|reset|watch|open|load|submit|pay|see|use|play|finish|get in|cancel)`), -2.0},
	{[]string{"doesn't", "does not", "didn't", "won't", "isn't", "is not", "not "}, regexp.MustCompile(`\b(doesn't|does not|didn't|won't|isn't|is not|not)\s+(work|working|load|loading|open|opening|play|playing|submit)`), -2.0},
	{[]string{" out"}, regexp.MustCompile(`\b(locked|kicked|logged|shut)\s+out\b`), -2.0},
	{[]string{"keep"}, regexp.MustCompile(`\bkeeps?\s+(crash|fail|freez|buffer|happen|getting|logging|kicking|spinning|charging|sending)`), -2.0},
	{[]string{"crash", "freez", "froze", "spins", "sync", "disappeared", "missing", "reset my", "lost "}, regexp.MustCompile(`\b(crash|crashes|crashed|freezes|froze|spins forever|out of sync|disappeared|went missing|reset my|lost (all|my))\b`), -1.6},
	// Money taken wrongly.
	{[]string{"charged"}, regexp.MustCompile(`\bcharged\b[^.!?]{0,25}\b(twice|again|without|anyway|wrong|double|extra)`), -2.6},
	{[]string{"without my"}, regexp.MustCompile(`\bwithout my (permission|approval|consent|authori[sz]ation)\b`), -2.4},
	{[]string{"paid", "pay"}, regexp.MustCompile(`\b(paid|pay|paying)\b[^.!?]{0,30}\b(nothing|no access|still|never|again)\b`), -2.0},
	{[]string{"dispute", "chargeback", "legal", "lawyer", "report you", "false adv", "theft", "steal"}, regexp.MustCompile(`\b(dispute|chargeback|legal action|lawyer|report you|false advertising|theft|stealing)\b`), -2.4},
	{[]string{"money back", "refund me", "full refund", "want a refund", "give me my money"}, regexp.MustCompile(`\b(money back|refund me|full refund|want a refund|give me my money)\b`), -2.2},
	// Repetition and exhaustion.
	{[]string{"how many", "time", "again", "asked", "enough", "fed up", "losing", "lost", "wast", "sick of", "tired of"}, regexp.MustCompile(`\b(how many times|(second|third|fourth|fifth|\d+(st|nd|rd|th)) time|again and again|asked (three|3|several|many) times|(had|have) enough|fed up|losing (patience|money)|lost (all )?trust|wasting my|wasted (my|hours)|sick of|tired of)\b`), -2.4},
	{[]string{"speak", "talk", "real person"}, regexp.MustCompile(`\b(speak|talk) to (a|your) (manager|supervisor|human|real person)\b|\breal person\b`), -1.8},
	{[]string{"account", "unsubscrib"}, regexp.MustCompile(`\b(close|delete|cancel) my account\b|\bunsubscrib`), -1.6},
	{[]string{"down", "broken", "offline"}, regexp.MustCompile(`\b(is|was|are|been|it's|site's|app's)\s+(down|broken|offline)\b|\bdown again\b`), -2.0},
	// Sarcasm that VADER reads as praise.
	{[]string{"thank", "great", "wonderful", "perfect", "fantastic", "awesome", "brilliant", "what a", "a joke"}, regexp.MustCompile(`\b(thanks|thank you) (a lot )?for (nothing|wasting)|\b(oh )?(great|wonderful|perfect|fantastic|awesome|brilliant)[,.!]+\s*(another|the site is|it's|again|still)|\bwhat a (joke|surprise)\b|\bthis is a joke\b`), -3.0},
	{[]string{"nightmare", "hopeless", "ridiculous", "unacceptable", "ashamed", "disgust"}, regexp.MustCompile(`\b(nightmare|hopeless|ridiculous|unacceptable|ashamed|disgust)`), -1.4},
	{[]string{"treat", "how bad", "how terrible", "how awful", "how poor"}, regexp.MustCompile(`\bthis is how you treat\b|\bhow (bad|terrible|awful|poor)\b`), -2.4},
}

// requestPattern marks a plain request for information ("what is your
// refund policy?", "how do I cancel?"): its support vocabulary is not a
// complaint.
var requestPattern = regexp.MustCompile(`^\s*(hi|hello|hey)?[ ,]*(what|how|where|when|which|who|can|could|do|does|is|are|will|would|may|i'd like|i would like|i need to|i want to know|i'm checking|i am checking|just checking|quick question)\b`)

// patternValence sums the complaint patterns that match lower, and says
// whether the text reads as a plain request.
func patternValence(lower string) (sum float64, request bool) {
	for _, p := range complaintPatterns {
		if containsAny(lower, p.anchors) && p.re.MatchString(lower) {
			sum += p.value
		}
	}
	request = requestPattern.MatchString(lower) || (strings.HasSuffix(strings.TrimSpace(lower), "?") && sum == 0)
	return sum, request
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
