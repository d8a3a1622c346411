/** The directories of OPA's test cases (v1/test/cases/testdata/v1) for each family of host builtins. */
export const BUILTIN_FAMILIES: Record<string, string[]> = {
  'io.jwt.*': [
    'jwtbuiltins', 'jwtdecodeverify', 'jwtencodesign', 'jwtencodesignheadererrors', 'jwtencodesignpayloaderrors', 'jwtencodesignraw',
    'jwtverifyeddsa', 'jwtverifyhs256', 'jwtverifyhs384', 'jwtverifyhs512', 'jwtverifyrsa',
  ],
  'crypto hashes and HMACs': ['cryptohmacequal', 'cryptohmacmd5', 'cryptohmacsha1', 'cryptohmacsha256', 'cryptohmacsha512', 'cryptomd5', 'cryptosha1', 'cryptosha256'],
  'crypto x509 and keys': [
    'cryptoparsersaprivatekeys', 'cryptox509parseandverifycertificates', 'cryptox509parsecertificaterequest', 'cryptox509parsecertificates',
    'cryptox509parsekeypair', 'cryptox509parsersaprivatekey',
  ],
  'time.*': ['time'],
  'semver.*': ['semvercompare', 'semverisvalid'],
  'units.*': ['units'],
  'uuid.*': ['uuid'],
  'rand.intn': ['rand'],
  'net.* (host)': ['netcidrexpand', 'netcidrisvalid', 'netcidrmerge', 'netcidrcontainsmatches', 'netlookupipaddr'],
  'json.verify_schema / match_schema': ['jsonschema'],
  'strings.render_template': ['rendertemplate'],
  'urlquery.*': ['urlbuiltins'],
  'base64 / hex': ['base64builtins', 'base64urlbuiltins', 'hexbuiltins'],
};

/** OPA test case note -> why the embedded engine's answer differs from OPA's. */
export const KNOWN_DIFFERENCES: Record<string, string> = {};
