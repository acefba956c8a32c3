package spool

// SegFile is segFile, for tests that inject faults.
type SegFile = segFile

// WrapSegments makes s wrap its active segment, and every segment it starts
// from now on, with wrap.
func WrapSegments(s *Spool, wrap func(SegFile) SegFile) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.wrap = wrap
	s.active = wrap(s.active)
}
