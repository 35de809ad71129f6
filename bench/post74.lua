-- wrk script for the ceilings: POST a 74-byte JSON body, keep-alive.
wrk.method = "POST"
wrk.body = '{"participant":"aline","voteId":"f972afe7-4652-4395-8e45-44ab3e4540da"}xx'
wrk.headers["Content-Type"] = "application/json"
