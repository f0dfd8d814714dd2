package schemas

import _ "embed"

//go:embed openapi.v1.yaml
var openAPI []byte

// OpenAPI returns the OpenAPI document of `cxstream api`.
func OpenAPI() ([]byte, error) { return openAPI, nil }
