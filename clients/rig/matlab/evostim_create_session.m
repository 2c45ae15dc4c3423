function created = evostim_create_session(base_url, config_json)
% EVOSTIM_CREATE_SESSION  Create a session; config_json is the JSON text of the settings (docs/protocol.md).
%   created = evostim_create_session('http://host:8000', '{"population_size": 40, "channels": ["ch17"]}')
%   created.session.id, created.generation (the manifest of generation 0, images ready)
  created = evostim_request('POST', [base_url '/v1/sessions'], config_json);
end
