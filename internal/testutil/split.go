package testutil

// Split cuts data into parts%4+1 pieces of about equal size (fewer when
// data is shorter), so that a fuzz input's extra byte chooses how a
// message stream is divided.
func Split(data []byte, parts uint8) [][]byte {
	n := int(parts%4) + 1
	if len(data) < n {
		return [][]byte{data}
	}
	var out [][]byte
	size := (len(data) + n - 1) / n
	for len(data) > 0 {
		k := min(size, len(data))
		out = append(out, data[:k])
		data = data[k:]
	}
	return out
}
