package gen

// Synthetic support-chat lines. None is a real customer's message.
var (
	negativeLines = []string{
		"I was charged twice for the same course and nobody answers my emails",
		"This is the third time I'm asking, the video player is still not working",
		"Absolutely unacceptable, I want a refund now",
		"I've been waiting for two days and still can't log in",
		"Your checkout keeps failing and I'm fed up",
		"The app crashes every time I open the lesson, useless",
		"I was on hold for an hour and then they hung up on me",
		"Worst support ever. Cancel my subscription.",
		"why is the certificate still missing?? this is ridiculous",
		"I paid and the course never arrived in my account, I want my money back",
		"the site is so slow it's unusable",
		"you overcharged me and the invoice is wrong",
	}
	neutralLines = []string{
		"Hi, how do I change the email on my account?",
		"Can I download the lessons for offline viewing?",
		"Where can I find my invoice?",
		"Is there a student discount?",
		"Do you have a course on Kubernetes?",
		"What time zone are the live sessions in?",
		"How long do I keep access after buying?",
		"ok",
		"I'd like to update my billing address",
	}
	positiveLines = []string{
		"Thanks, that fixed it!",
		"Great course, I really enjoyed the exercises",
		"Perfect, thank you so much for the quick help :)",
		"Love the new mobile app",
		"That was very helpful, have a nice day",
	}
	agentLines = []string{
		"Thanks for reaching out, let me check that for you.",
		"I'm sorry to hear that. Could you send me your order number?",
		"I've escalated this to our billing team.",
		"Is there anything else I can help you with?",
	}
	personalData = []string{
		"My email is jane.doe@example.com.",
		"Card ending 4111 1111 1111 1111 was charged.",
		"Call me on +44 20 7946 0958.",
		"Order number 884213377.",
	}
)
