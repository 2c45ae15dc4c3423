function result = evostim_request(method, url, body, headers)
% EVOSTIM_REQUEST  One JSON request to the evostim server; returns the decoded answer.
%   result = evostim_request('GET', url)
%   result = evostim_request('POST', url, json_text, {'Idempotency-Key', key})
% MATLAB uses webread/webwrite. GNU Octave's webwrite (7.x) cannot send a raw JSON body, so under Octave the
% request goes through curl. A problem answer (HTTP 4xx/5xx) raises an error carrying its "detail".
  if nargin < 3, body = ''; end
  if nargin < 4, headers = {}; end
  token = getenv('EVOSTIM_TOKEN');
  if ~isempty(token), headers = [headers, {'Authorization', ['Bearer ' token]}]; end
  if exist('OCTAVE_VERSION', 'builtin')
    result = curl_request(method, url, body, headers);
  else
    options = weboptions('MediaType', 'application/json', 'Timeout', 60, 'HeaderFields', reshape(headers, 2, [])');
    if strcmpi(method, 'GET')
      result = webread(url, options);
    else
      result = webwrite(url, body, options);
    end
  end
end

function result = curl_request(method, url, body, headers)
  body_file = [tempname() '.json'];
  out_file = [tempname() '.json'];
  fid = fopen(body_file, 'w'); fwrite(fid, body); fclose(fid);
  args = '';
  if ~isempty(headers), args = sprintf(' -H "%s: %s"', headers{:}); end
  command = sprintf('curl -sS -X %s -H "Content-Type: application/json"%s -o "%s" -w "%%{http_code}"', ...
                    method, args, out_file);
  if ~strcmpi(method, 'GET'), command = [command sprintf(' --data-binary "@%s"', body_file)]; end
  [status, code] = system([command ' "' url '"']);
  delete(body_file);
  if status ~= 0, error('evostim:connection', 'could not reach %s (curl exit %d)', url, status); end
  text = fileread(out_file); delete(out_file);
  result = jsondecode(text);
  if str2double(code) >= 400
    error('evostim:problem', 'HTTP %s: %s', strtrim(code), result.detail);
  end
end
