package pipeline

// SetGather replaces how c lets other workers' batches join one that is
// gathering: f is given the number of batches waiting so far.
func SetGather(c *Combiner, f func(waiting func() int)) {
	c.gather = func() {
		f(func() int {
			c.mu.Lock()
			defer c.mu.Unlock()
			return len(c.waiting)
		})
	}
}
